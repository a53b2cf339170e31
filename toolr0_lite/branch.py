"""A branch: a copy of a run as it stood after one of its finished phases, with other settings for what follows.

This is self-play's paired ablation. The phases up to the branch point are the source run's own (the same
Generator adapter, the same candidates, the same selected tasks), so two branches that differ in one Solver
setting differ in nothing else, where two separate runs would also differ in what their Generators wrote.
Running the branch resumes it after that phase, exactly as a killed run resumes (rundir.py); a branch with the
source's own settings therefore repeats the source's records. A setting that the copied phases read (say
`generator.steps` for a branch after `iter_00/synthesis`) acts only from the next phase that reads it on;
`branch.json` names each setting that differs from the source's, with both values.

    toolr0-lite branch runs/qwen iter_00/synthesis --out runs/qwen_lr2e-5 --set solver.learning_rate=2e-5
    toolr0-lite run runs/qwen_lr2e-5/config.yaml
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import yaml

from toolr0_lite.config import ConfigError, to_dict
from toolr0_lite.rundir import adapter_units, atomic_write_text, committed_lines, read_state
from toolr0_lite.selfplay_config import SelfPlayConfig, changed_settings, load_config


def branch_run(source: str | Path, after: str, out: str | Path, sets: list[str] | None = None) -> SelfPlayConfig:
    """Copy run `source` as it stood when unit `after` (e.g. "iter_00/synthesis") was committed into the new
    folder `out`, with `sets` ("solver.learning_rate=2e-5") over the source's config; returns the branch's config.
    Everything is checked before anything is written; the source is only read (it may still be running)."""
    source, out = Path(source), Path(out)
    if not (source / "config.yaml").is_file():
        raise ConfigError(f"{source}: no config.yaml here; give a run directory (a folder `toolr0-lite run` wrote)")
    state = read_state(source)
    done = state.get("done", [])
    if after not in done:
        raise ConfigError(f"{after!r} is not a finished phase of {source}; branch after one of: "
                          f"{', '.join(done) or 'none (nothing is finished yet)'}")  # fmt: skip
    lines = state.get("lines_at", {}).get(after)
    if lines is None:
        raise ConfigError(f"{source}/state.json does not record its files as they were after {after} (the run was "
                          "started by a kit version without branches); branch a run made with this version")  # fmt: skip
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"--out {out}: the folder exists and is not empty; give a new one")
    config = load_config(path=source / "config.yaml", sets=sets, out=str(out))  # a bad --set stops here
    old, new = yaml.safe_load((source / "config.yaml").read_text()), to_dict(config)

    kept = done[: done.index(after) + 1]
    adapters = adapter_units(kept)
    missing = [p for p in [*lines, *adapters] if not (source / p).exists()]
    if missing:
        raise ConfigError(f"{source} is missing {', '.join(missing)}, which the run had after {after}; restore it")
    for relative, count in lines.items():  # each record file cut to the lines it had then
        atomic_write_text(out / relative, committed_lines((source / relative).read_bytes(), count).decode("utf-8"))
    for unit in adapters:
        shutil.copytree(source / unit, out / unit)
    changed = {key: [_value(old, key), _value(new, key)] for key in changed_settings(old, new) if key != "out"}
    atomic_write_text(out / "config.yaml", yaml.safe_dump(new, sort_keys=False))
    atomic_write_text(out / "branch.json", json.dumps({"source": str(source.resolve()), "after": after,
                                                       "changed": changed}, indent=1))  # fmt: skip
    lines_at = {unit: state["lines_at"][unit] for unit in kept if unit in state["lines_at"]}
    atomic_write_text(out / "state.json", json.dumps({"done": kept, "lines": lines, "lines_at": lines_at}, indent=1))
    return config


def _value(config: dict, dotted: str) -> Any:
    """A setting of a config dict by its dotted name ("solver.learning_rate"); None where it has none."""
    for key in dotted.split("."):
        config = config.get(key) if isinstance(config, dict) else None
    return config
