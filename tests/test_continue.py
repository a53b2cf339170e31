"""Continuing a finished run for more iterations, and a damaged run directory: one line each, nothing lost."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_selfplay import _records, rewards_that_move_the_weights

from toolr0_lite.cli import main as cli
from toolr0_lite.config import ConfigError
from toolr0_lite.rundir import RunDirError
from toolr0_lite.selfplay import run_selfplay
from toolr0_lite.selfplay_config import load_config

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def one_iteration(tmp_path_factory):
    out = tmp_path_factory.mktemp("one") / "run"
    run_selfplay(load_config("tiny", out=str(out)), log=lambda _: None)
    return out


def copy_of(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / "run"))


def files(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


def test_raising_iterations_continues_a_finished_run(one_iteration, tmp_path):
    continued = copy_of(one_iteration, tmp_path)
    first = {k: v for k, v in _records(continued).items()}
    logs = []
    run = run_selfplay(load_config("tiny", out=str(continued), iterations=2), log=logs.append)
    assert "resuming" in logs[0] and run.is_done("iter_01/solver")
    straight = tmp_path / "straight"
    run_selfplay(load_config("tiny", out=str(straight), iterations=2), log=lambda _: None)
    assert _records(continued) == _records(straight)  # one run, as if it had been asked for two from the start
    assert all(_records(continued)[k] == rows for k, rows in first.items() if k != "metrics.jsonl")
    assert load_config(path=continued / "config.yaml").iterations == 2


def test_lowering_iterations_below_finished_work_is_refused(one_iteration, tmp_path, capsys):
    run = copy_of(one_iteration, tmp_path)
    run_selfplay(load_config("tiny", out=str(run), iterations=2), log=lambda _: None)
    before = files(run)
    capsys.readouterr()  # the run's own progress bars
    assert cli(["run", "tiny", "--out", str(run), "--iterations", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "set iterations to at least 2" in err
    assert files(run) == before


@pytest.mark.parametrize("damage, message", [
    (lambda r: (r / "state.json").write_text((r / "state.json").read_text()[:40]), "state.json is damaged"),
    (lambda r: (r / "state.json").write_text("[1, 2]"), "does not hold a run's state"),
    (lambda r: (r / "state.json").write_text('{"done": [], "lines": {}, "lines_at": [3]}'), "does not hold a run's state"),
    (lambda r: (r / "state.json").unlink(), "state.json is missing but"),
    (lambda r: (r / "config.yaml").write_text("model: {source: [tiny\n"), "config.yaml is damaged"),
    (lambda r: shutil.rmtree(r / "iter_00" / "solver"), "iter_00/solver' out of state.json"),
])  # fmt: skip
def test_a_damaged_run_directory_is_named_in_one_line_and_left_alone(one_iteration, tmp_path, capsys, damage, message):
    run = copy_of(one_iteration, tmp_path)
    damage(run)
    before = files(run)
    assert cli(["run", "tiny", "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
    assert files(run) == before  # nothing of the finished work was cut back or deleted


def test_the_previous_state_restores_a_damaged_one(one_iteration, tmp_path):
    run = copy_of(one_iteration, tmp_path)
    good = json.loads((run / "state.json").read_text())
    (run / "state.json").write_text("{")
    with pytest.raises(RunDirError, match="copy state.prev.json over it"):
        run_selfplay(load_config("tiny", out=str(run)), log=lambda _: None)
    shutil.copy(run / "state.prev.json", run / "state.json")
    resumed = run_selfplay(load_config("tiny", out=str(run)), log=lambda _: None)
    assert resumed.state["done"] == good["done"]  # the last commit before is redone, the rest kept


@pytest.mark.parametrize("command", [
    [sys.executable, str(ROOT / "recipes" / "run_small.py"), "--preset", "tiny", "--iterations", "0"],
    [sys.executable, "-m", "toolr0_lite.cli", "run", "tiny", "--iterations", "0"],
    [sys.executable, str(ROOT / "benchmarks" / "learn_cpu.py"), "--preset", "tiny", "--model", "nope.gguf"],
    [sys.executable, str(ROOT / "benchmarks" / "ablate_cpu.py"), "--preset", "no_such_preset"],
])  # fmt: skip
def test_every_entry_point_reports_the_kits_errors_in_one_line(command, tmp_path):
    done = subprocess.run(command + ["--out", str(tmp_path / "out")], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert ConfigError.__name__ not in done.stderr  # the message, not the exception's name


def test_eval_of_a_run_with_a_damaged_state_is_one_line(one_iteration, tmp_path, capsys):
    run = copy_of(one_iteration, tmp_path)
    (run / "state.json").write_text("{ cut")
    assert cli(["eval", str(run), "--categories", "none"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "state.json is damaged" in err


def test_gradient_checkpointing_may_be_turned_on_when_resuming_and_changes_no_record(tmp_path, monkeypatch):
    """Out of memory in a phase (a long prompt's activations): resume with checkpointing on. It recomputes the same
    activations, so the run goes on as it would have: records and adapters equal a straight run without it."""
    rewards_that_move_the_weights(monkeypatch)
    continued = tmp_path / "continued"
    run_selfplay(load_config("tiny", out=str(continued)), log=lambda _: None)
    sets = ["generator.gradient_checkpointing=true", "solver.gradient_checkpointing=true"]
    run_selfplay(load_config("tiny", out=str(continued), iterations=2, sets=sets), log=lambda _: None)
    straight = tmp_path / "straight"
    run_selfplay(load_config("tiny", out=str(straight), iterations=2), log=lambda _: None)
    assert _records(continued) == _records(straight)
    for role in ("generator", "solver"):
        mine, theirs = (load_file(r / "iter_01" / role / "adapter_model.safetensors") for r in (continued, straight))
        assert mine.keys() == theirs.keys()
        assert all(torch.equal(mine[k], theirs[k]) for k in mine)
        assert any(k.endswith("lora_B.weight") and mine[k].abs().sum() > 0 for k in mine)  # the weights did move
    assert load_config(path=continued / "config.yaml").solver.gradient_checkpointing
