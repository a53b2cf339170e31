"""Did the Solver get better at calling tools, without calling a tool for everything? Score it, base vs trained.

Two yardsticks, both offline:
- **BFCL** single-turn categories (bfcl.py: non-live AST, irrelevance, and the live ones), greedy, in one of
  two prompt modes: `kit`, the kit's own Solver prompt with BFCL's functions as the tool menu (the format the
  Solver was trained on: what training changed), or `bfcl`, the leaderboard's own prompt and decoder for
  models without native function calling (what compares with published numbers).
- **Held-out self-play tasks**: the run's `heldout.jsonl` (set aside in iteration 0, never trained on),
  scored with the Solver reward r_S and exact match, no-call tasks counted on their own. r_S pays its accuracy
  part only to answers that reason in `<think>` first, so two more measures keep a change in that habit apart
  from a change in the calls: the share of answers that reason first, and the calls' accuracy without the gate.

"base" is the Solver's LoRA weights at initialisation (B = 0: exactly the base model), "trained" the loaded
adapter; both run on one loaded base. Every answer is appended to `eval/results.jsonl` as it comes, so an
interrupted evaluation resumes where it stopped; `eval/summary.json` and `eval/bfcl.png` are rewritten at the end.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import torch

from toolr0_lite.bfcl import (
    CATEGORIES,
    GROUPS,
    NON_LIVE,
    NOT_RUN,
    PROMPTS,
    BfclItem,
    aggregate,
    bfcl_messages,
    load_items,
    score,
    score_text,
)
from toolr0_lite.config import ConfigError
from toolr0_lite.distributed import generate_shared, join_launch, open_run
from toolr0_lite.models import ModelConfig, RoleModel
from toolr0_lite.parsing import parse_solver_output
from toolr0_lite.pipeline import example_places
from toolr0_lite.prompts import EXAMPLE_LAST, solver_messages
from toolr0_lite.records import Task
from toolr0_lite.rewards import accuracy_reward, exact_match, solver_reward
from toolr0_lite.rundir import RunDir, atomic_write_text, finished_units, read_jsonl


@dataclass
class EvalConfig:
    """What to score and how. `limit` takes a seeded subset of about that many BFCL items, spread over categories."""

    categories: list[str] = field(default_factory=lambda: list(NON_LIVE))  # [] skips BFCL
    prompt: str = "kit"  # "kit": the Solver's own prompt; "bfcl": the leaderboard's prompting mode
    limit: int | None = None
    seed: int = 0
    base: bool = False  # also score the base model (always, when there is no adapter)
    exemplars: bool = True  # one solved example in the prompt, as the Solver was trained with exemplars on
    think_prefill: bool = False  # the kit prompt's answer begun with <think>, as the Solver was trained with it on
    example_pair: bool = False  # with exemplars, a call and a no-call example, as with solver_example_pair on
    example_last: str = "alternate"  # which of the pair comes last, as solver_example_last says
    max_new_tokens: int = 256
    # prompts per generate call and per resumable write; None: 32 on a CPU (a write every few minutes), 512 on a
    # GPU, where narrow calls leave it idle (an H200 took 11 s per 32 BFCL items, launch-bound): there the width
    # of one call is bounded by the model's max_batch_tokens instead
    chunk: int | None = None

    def __post_init__(self) -> None:
        unknown = [c for c in self.categories if c not in CATEGORIES]
        if unknown:
            raise ConfigError(f"categories: {unknown} are not BFCL categories here; choose from {', '.join(CATEGORIES)} "
                              f"(or {', '.join(GROUPS)})")  # fmt: skip
        if self.prompt not in PROMPTS:
            raise ConfigError(f"prompt: {self.prompt!r}; use {' or '.join(PROMPTS)}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError("limit: must be >= 1 (or leave it out for every item)")
        if self.max_new_tokens < 1 or (self.chunk is not None and self.chunk < 1):
            raise ConfigError("max_new_tokens and chunk: must be >= 1")
        if self.example_pair and not self.exemplars:
            raise ConfigError("example_pair: the prompt shows no solved example; drop --no-exemplar or --example-pair")
        if self.example_last not in EXAMPLE_LAST:
            raise ConfigError(f"example_last: {self.example_last!r}; use {', '.join(EXAMPLE_LAST)}")
        if self.example_last != "alternate" and not self.example_pair:
            raise ConfigError("example_last: it orders a pair of examples; add --example-pair")


# ---------------------------------------------------------------- one record per answer


def bfcl_record(item: BfclItem, text: str) -> dict:
    """An answer in the kit's format, decoded by the kit's parser and checked by BFCL."""
    out = parse_solver_output(text)
    verdict = score(item, out.calls, out.error)
    calls = None if out.calls is None else [asdict(c) for c in out.calls]
    return {"benchmark": "bfcl", "id": item.id, "category": item.category, "raw": text, "calls": calls,
            "valid": verdict.valid, "error_type": verdict.error_type, "error": verdict.error}  # fmt: skip


def bfcl_prompt_record(item: BfclItem, text: str) -> dict:
    """An answer in BFCL's prompting format, decoded and checked by BFCL (calls in its `{name: {args}}` form)."""
    verdict, decoded = score_text(item, text)
    return {"benchmark": "bfcl", "id": item.id, "category": item.category, "raw": text, "calls": decoded,
            "valid": verdict.valid, "error_type": verdict.error_type, "error": verdict.error}  # fmt: skip


def heldout_record(task: Task, text: str) -> dict:
    out = parse_solver_output(text)
    gold = [asdict(c) for c in task.gold_calls]
    return {"benchmark": "heldout", "id": task.id, "no_call": not task.gold_calls, "raw": text,
            "calls": None if out.calls is None else [asdict(c) for c in out.calls],
            "reward": solver_reward(text, gold), "exact_match": exact_match(out.calls, task.gold_calls),
            "thought": bool(out.think),  # r_S's accuracy part is paid only after a non-empty <think>
            "call_accuracy": 0.0 if out.calls is None else accuracy_reward(out.calls, task.gold_calls)}  # fmt: skip


# ---------------------------------------------------------------- summaries


def summarize(records: list[dict]) -> dict[str, Any]:
    """Per-category BFCL accuracy with error types, the leaderboard aggregates, and held-out task scores."""
    summary: dict[str, Any] = {}
    bfcl = [r for r in records if r["benchmark"] == "bfcl"]
    if bfcl:
        categories = {}
        for category in CATEGORIES:
            rows = [r for r in bfcl if r["category"] == category]
            if rows:
                correct = sum(r["valid"] for r in rows)
                errors = Counter(r["error_type"] for r in rows if not r["valid"])
                categories[category] = {"n": len(rows), "correct": correct, "accuracy": correct / len(rows),
                                        "errors": dict(errors.most_common())}  # fmt: skip
        summary["bfcl"] = {"categories": categories, "aggregates": aggregate(categories), "not_run": list(NOT_RUN)}
    held = [r for r in records if r["benchmark"] == "heldout"]
    if held:
        no_call = [r for r in held if r["no_call"]]
        summary["heldout"] = {
            "n": len(held), "reward": sum(r["reward"] for r in held) / len(held),
            "exact_match": sum(r["exact_match"] for r in held) / len(held), "no_call_n": len(no_call),
            "no_call_accuracy": sum(r["exact_match"] for r in no_call) / len(no_call) if no_call else None,
        }  # fmt: skip
        if all("call_accuracy" in r for r in held):  # records written before these two measures lack them
            summary["heldout"]["think_share"] = sum(r["thought"] for r in held) / len(held)
            summary["heldout"]["call_accuracy"] = sum(r["call_accuracy"] for r in held) / len(held)
    return summary


def table(summaries: dict[str, dict]) -> str:
    """A plain-text table: one row per measure, one column per variant (base, trained)."""
    variants = list(summaries)
    rows: list[tuple[str, list[str]]] = []

    def cell(value: float | None, n: int | None = None) -> str:
        return "-" if value is None else f"{100 * value:5.1f}%" + (f" (n={n})" if n is not None else "")

    names = {c for s in summaries.values() for c in s.get("bfcl", {}).get("categories", {})}
    for category in (c for c in CATEGORIES if c in names):
        got = [summaries[v].get("bfcl", {}).get("categories", {}).get(category) for v in variants]
        rows.append((category, [cell(g["accuracy"], g["n"]) if g else "-" for g in got]))
    for name in ("non_live_simple", "non_live_overall", "live_overall", "irrelevance", "relevance", "overall"):
        got = [summaries[v].get("bfcl", {}).get("aggregates", {}).get(name) for v in variants]
        if any(g is not None for g in got):
            rows.append((f"BFCL {name}", [cell(g) for g in got]))
    for key, label in (("exact_match", "held-out exact match"), ("no_call_accuracy", "held-out no-call accuracy"),
                       ("think_share", "held-out answers with <think>")):  # fmt: skip
        got = [summaries[v].get("heldout", {}) for v in variants]
        if any(g.get(key) is not None for g in got):
            rows.append((label, [cell(g.get(key), g.get("no_call_n" if key == "no_call_accuracy" else "n")) if g else "-" for g in got]))
    for key, label in (("reward", "held-out mean r_S (0-2)"), ("call_accuracy", "held-out call accuracy (0-1)")):
        got = [summaries[v].get("heldout", {}).get(key) for v in variants]
        if any(g is not None for g in got):
            rows.append((label, ["-" if g is None else f"{g:.3f}" for g in got]))
    width = max([len(r[0]) for r in rows] + [10])
    lines = [f"{'':{width}}  " + "  ".join(f"{v:>16}" for v in variants)]
    lines += [f"{name:{width}}  " + "  ".join(f"{c:>16}" for c in cells) for name, cells in rows]
    return "\n".join(lines)


def plot(summaries: dict[str, dict], path: Path) -> Path | None:
    """bfcl.png: bars per BFCL category run (and the non-live aggregate), one colour per variant."""
    from toolr0_lite.plots import plot_bfcl

    run = [c for c in CATEGORIES if any(c in s.get("bfcl", {}).get("categories", {}) for s in summaries.values())]
    run += [a for a in ("non_live_overall",) if any(a in s.get("bfcl", {}).get("aggregates", {}) for s in summaries.values())]
    return plot_bfcl(summaries, run, path) if run else None


# ---------------------------------------------------------------- running the model


def _answer(roles: RoleModel, out: RunDir, variant: str, benchmark: str, items: list, make_record: Callable,
            config: EvalConfig, desc: str) -> None:  # fmt: skip
    """Greedy Solver answers to the items not yet in results.jsonl, appended a chunk at a time."""
    from tqdm.auto import tqdm

    done = {(r["variant"], r["benchmark"], r["id"]) for r in read_jsonl(out.path("results.jsonl"))}
    # i: the place whose worked examples the item's prompt shows; a no-call twin shows its task's, as in training
    todo = [(i, x) for i, x in zip(example_places(items), items) if (variant, benchmark, x.id) not in done]
    if not todo:
        return
    size = config.chunk or (512 if torch.cuda.is_available() else 32)
    for first in tqdm(range(0, len(todo), size), desc=desc, unit="chunk", disable=not out.writer):
        chunk = todo[first : first + size]
        prompts = [prompt_of(x, benchmark, config, i) for i, x in chunk]  # a resumed item gets the same prompt
        answers = generate_shared(roles, "solver", prompts, n=1, temperature=0, max_new_tokens=config.max_new_tokens)
        records = [{"variant": variant, **make_record(x, a[0].text)} for (_, x), a in zip(chunk, answers)]
        out.append("results.jsonl", records)
        out.commit()


def prompt_of(item: BfclItem | Task, benchmark: str, config: EvalConfig, index: int) -> list[dict]:
    """The chat a model answers: BFCL's own prompt in `bfcl` mode; otherwise the kit's Solver prompt."""
    if benchmark == "bfcl" and config.prompt == "bfcl":
        return bfcl_messages(item)
    task = item.to_task() if benchmark == "bfcl" else item
    return solver_messages(task, index if config.exemplars else None, config.think_prefill, config.example_pair,
                           config.example_last)  # fmt: skip


def _changed(made: dict, wanted: dict) -> str:
    """The settings in which `wanted` differs from `made`, as "key: made → wanted"."""
    keys = [k for k in dict.fromkeys([*made, *wanted]) if made.get(k) != wanted.get(k)]
    return ", ".join(f"{k}: {made.get(k)} → {wanted.get(k)}" for k in keys)


def evaluate(roles: RoleModel, out_dir: str | Path, config: EvalConfig, adapter: str | Path | None = None,
             heldout: list[Task] | None = None, log: Callable[[str], None] = print) -> dict[str, dict]:  # fmt: skip
    """Score the base Solver (when asked, or when there is no adapter) and the `adapter`'s; returns the summaries.

    `roles` must be freshly loaded: its Solver weights are still the initial ones (the base model's behaviour).
    """
    out = open_run(out_dir)
    log = log if out.writer else (lambda _: None)
    settings = {"max_new_tokens": config.max_new_tokens, "exemplars": config.exemplars, "prompt": config.prompt,
                "adapter": str(adapter) if adapter else None, "model": roles.config.source,
                **({"think_prefill": True} if config.think_prefill else {}),  # only when on: older folders still resume
                **({"example_pair": True} if config.example_pair else {}),
                **({"example_last": config.example_last} if config.example_last != "alternate" else {}),
                # the weights' dtype moves greedy answers too (dtype auto differs between processors)
                "dtype": roles.config.dtype_name()}  # fmt: skip
    settings_path = out.path("settings.json")
    if settings_path.exists():
        made = json.loads(settings_path.read_text())
        if made != {k: v for k, v in settings.items() if k in made or k != "dtype"}:  # older folders hold no dtype
            raise ConfigError(f"{out.root} holds results made with other settings ({settings_path}): "
                              f"{_changed(made, settings)}; use another --out")  # fmt: skip
        settings = made  # kept as the answers were made
    elif out.writer:
        atomic_write_text(settings_path, json.dumps(settings, indent=1))

    items = load_items(config.categories, config.limit, config.seed) if config.categories else []
    heldout = heldout or []
    for i, task in enumerate(heldout):
        task.id = task.id or f"heldout-{i:05d}"  # results are keyed by id, for resuming
    variants = (["base"] if config.base or adapter is None else []) + (["trained"] if adapter else [])
    for variant in variants:  # "base" first: the Solver slot still holds its initial weights
        if variant == "trained":
            roles.load_role("solver", adapter)
        # The held-out tasks first: few, and the run's own measure, so an evaluation stopped in BFCL still has them.
        _answer(roles, out, variant, "heldout", heldout, heldout_record, config, f"held-out tasks ({variant})")
        record = bfcl_prompt_record if config.prompt == "bfcl" else bfcl_record
        _answer(roles, out, variant, "bfcl", items, record, config, f"BFCL, {config.prompt} prompt ({variant})")

    wanted = {("bfcl", x.id) for x in items} | {("heldout", t.id) for t in heldout}
    records = [r for r in read_jsonl(out.path("results.jsonl")) if (r["benchmark"], r["id"]) in wanted]
    summaries = {v: summarize([r for r in records if r["variant"] == v]) for v in variants}
    chart = None
    if out.writer:
        atomic_write_text(out.path("summary.json"), json.dumps({"settings": settings, "limit": config.limit,
                                                                "variants": summaries}, indent=1))  # fmt: skip
        chart = plot(summaries, out.path("bfcl.png"))
    log(table(summaries))
    log(f"toolr0_lite: results in {out.path('results.jsonl')}, summary in {out.path('summary.json')}"
        + (f", chart {chart}" if chart else ""))  # fmt: skip
    return summaries


def latest_solver(root: Path) -> Path | None:
    """The last finished Solver adapter of a run directory, read without opening the run (which may be running)."""
    solvers = sorted(u for u in finished_units(root) if u.endswith("/solver"))
    return root / solvers[-1] if solvers else None


def evaluate_run(run_dir: str | Path, config: EvalConfig, out: str | Path | None = None, tasks: list[Task] | None = None,
                 log: Callable[[str], None] = print) -> dict[str, dict]:  # fmt: skip
    """Evaluate a self-play run: its config's model, its latest Solver adapter, its held-out tasks (or `tasks`)."""
    from toolr0_lite.selfplay_config import load_config

    root = Path(run_dir)
    if not (root / "config.yaml").is_file():
        raise ConfigError(f"{root} is not a run directory (no config.yaml); pass a run's --out, or use --model")
    run_config = load_config(path=root / "config.yaml")
    adapter = latest_solver(root)
    if adapter is None:
        raise ConfigError(f"{root} has no finished Solver phase yet; run it further, or evaluate the base with --model")
    # prompt as the run trained; the caller's config stays as it was
    config = replace(config, exemplars=run_config.solver_shows_example, think_prefill=run_config.solver_think_prefill,
                     example_pair=run_config.solver_example_pair, example_last=run_config.solver_example_last)  # fmt: skip
    heldout = tasks if tasks is not None else [Task.from_dict(d) for d in read_jsonl(root / "heldout.jsonl")]
    no_tasks = f"{root} has no held-out tasks (the Generator wrote none sound in iteration 0)"
    _check_something_to_score(config, heldout, no_tasks)
    if not heldout:
        log(f"toolr0_lite: {no_tasks}; BFCL only")
    _check_bfcl(config)
    join_launch()
    roles = RoleModel.load(run_config.model)
    return evaluate(roles, out or root / "eval", config, adapter, heldout, log)


def adapter_model_config(source: str, adapter: str | Path | None) -> ModelConfig:
    """A ModelConfig for `source` whose LoRA shape matches `adapter`'s (read from its adapter_config.json)."""
    if adapter is None:
        return ModelConfig(source=source)
    path = Path(adapter) / "adapter_config.json"
    if not path.is_file():
        raise ConfigError(f"--adapter {adapter}: no adapter_config.json there; pass a PEFT adapter folder")
    saved = json.loads(path.read_text())
    return ModelConfig(source=source, lora_r=saved["r"], lora_alpha=saved["lora_alpha"],
                       target_modules=sorted(saved["target_modules"]))  # fmt: skip


def _check_something_to_score(config: EvalConfig, tasks: list[Task] | None, no_tasks: str) -> None:
    """Fail before any model loads when neither held-out tasks nor BFCL categories are given: nothing to score."""
    if not tasks and not config.categories:
        raise ConfigError(f"{no_tasks} and no BFCL categories are asked for: nothing to score; give --tasks FILE "
                          "(a JSONL of tasks) or BFCL --categories")  # fmt: skip


def _check_bfcl(config: EvalConfig) -> None:
    """Fail before any model loads when BFCL is asked for and not installed."""
    if config.categories:
        from toolr0_lite.bfcl import _bfcl

        try:
            _bfcl()
        except ImportError as e:
            raise ConfigError(str(e)) from None


def evaluate_model(source: str, config: EvalConfig, out: str | Path, adapter: str | Path | None = None,
                   tasks: list[Task] | None = None, log: Callable[[str], None] = print,
                   max_batch_tokens: int | None = None) -> dict[str, dict]:  # fmt: skip
    """Evaluate any model source (tiny, smollm2-135m, a Hub id, a folder), with or without a Solver adapter."""
    model_config = adapter_model_config(source, adapter)
    if max_batch_tokens is not None:
        model_config = replace(model_config, max_batch_tokens=max_batch_tokens)
    model_config.check()
    _check_something_to_score(config, tasks, "no tasks are given")
    _check_bfcl(config)
    join_launch()
    return evaluate(RoleModel.load(model_config), out, config, adapter, tasks, log)
