"""CPU speed of real models: float32 vs bfloat16, and the shared-prefix cache on or off (offline models).

For each model (SmolLM2-135M from its wheel; the 0.5B Qwen2.5-Coder GGUF too when `offline_qwen.py` has
assembled it, or `--gguf FILE`) it prints one line per figure, `name: before after ratio` (the ratio is the
speed-up, for times too), every pair measured in this run on this machine:

- `generate_tokens_per_s`: the hand-written Solver prompts, greedy, 64 new tokens, float32 → bfloat16 (cache off in
  both); and in bfloat16, generation with the model's own attention kernel (sdpa) → eager, as the kit generates;
- `grpo_step_seconds`: seconds a Solver GRPO step takes (TRL, `--grpo-steps` steps of small_cpu's sizes,
  trainer set-up included), float32 → bfloat16;
- `eval_items_per_s_*`: greedy BFCL answers (the kit's prompt with its rotating exemplar), today's path
  (float32, no cache) → cache alone, bfloat16 alone, and both;
- `probe_tasks_per_s`: the frozen Solver's K = 8 answers and judge score per task, today's path → both;
- with `--iteration`: one `small_cpu` iteration's minutes, today's path → both (about 25 min on 2 cores).

bfloat16 is used only where the processor computes it natively (`cpu_runs_bfloat16`); elsewhere the script says so.

    python benchmarks/bench_cpu_speed.py [--models smollm2 qwen0.5b] [--items 16] [--figures eval ...] [--iteration]
    python benchmarks/bench_cpu_speed.py --models --iteration     # the iteration alone (no per-model figures)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from unittest.mock import patch

import torch
from common import HAND_WRITTEN, OFFLINE_QWEN

from toolr0_lite.bfcl import load_items
from toolr0_lite.config import run_entry_point
from toolr0_lite.models import ModelConfig, RoleModel, cpu_runs_bfloat16
from toolr0_lite.prompts import solver_messages
from toolr0_lite.records import Task
from toolr0_lite.rundir import RunDir
from toolr0_lite.selfplay import probe_tasks, run_selfplay, solver_phase
from toolr0_lite.selfplay_config import load_config
from toolr0_lite.sources import SMOLLM2

BEFORE = {"dtype": "float32", "prefix_cache": False}  # the kit's CPU path before this change
AFTER = {"dtype": "bfloat16", "prefix_cache": True}


def line(name: str, before: float, after: float, seconds: bool = False) -> None:
    """`name: before after ratio`; the ratio is the speed-up either way (for seconds, before / after)."""
    print(f"{name}: {before:.3f} {after:.3f} {before / after if seconds else after / before:.2f}x", flush=True)


def load(source: str, **settings) -> RoleModel:
    return RoleModel.load(ModelConfig(source=source, lora_r=8, lora_alpha=16, **settings))


def tokens_per_s(roles: RoleModel, tasks: list[Task]) -> float:
    prompts = [solver_messages(t) for t in tasks]
    start = time.perf_counter()
    out = roles.generate("solver", prompts, n=1, temperature=0, max_new_tokens=64)
    return sum(g[0].completion_tokens for g in out) / (time.perf_counter() - start)


def items_per_s(roles: RoleModel, items: list, max_new_tokens: int) -> float:
    prompts = [solver_messages(item.to_task(), i) for i, item in enumerate(items)]
    start = time.perf_counter()
    roles.generate("solver", prompts, n=1, temperature=0, max_new_tokens=max_new_tokens)
    return len(items) / (time.perf_counter() - start)


def probes_per_s(roles: RoleModel, tasks: list[Task], config) -> float:
    start = time.perf_counter()
    probe_tasks(roles, tasks, config, seed=0)
    return len(tasks) / (time.perf_counter() - start)


def grpo_step_s(roles: RoleModel, config, steps: int = 2) -> float:
    config = replace(config, solver=replace(config.solver, steps=steps))
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        solver_phase(roles, HAND_WRITTEN, config, RunDir(out), 0)
        return (time.perf_counter() - start) / steps


FIGURES = ("generate", "grpo", "eval", "probes")
BEFORE_ARM, AFTER_ARM = ("float32", False), ("bfloat16", True)  # (dtype, prefix cache)


def bench_model(name: str, source: str, items: int, max_new_tokens: int, grpo_steps: int, figures: set[str]) -> None:
    print(f"# {name} ({source}), {torch.get_num_threads()} threads", flush=True)
    config = load_config("small_cpu")
    bfcl = load_items(limit=items, seed=0)
    arms = {BEFORE_ARM}  # only the arms the chosen figures compare are loaded
    if figures & {"generate", "grpo"}:
        arms.add(("bfloat16", False))
    if "eval" in figures:
        arms |= {("float32", True), ("bfloat16", False), AFTER_ARM}
    if "probes" in figures:
        arms.add(AFTER_ARM)
    measured: dict[tuple[str, bool], dict[str, float]] = {}
    for dtype, cache in sorted(arms):
        roles = load(source, dtype=dtype, prefix_cache=cache)
        got = measured[dtype, cache] = {}
        if "eval" in figures:
            got["eval"] = items_per_s(roles, bfcl, max_new_tokens)
        if not cache and "generate" in figures:
            got["tokens"] = tokens_per_s(roles, HAND_WRITTEN)
            if dtype == "bfloat16":  # the same with the model's own attention kernel (sdpa) in generation too
                with patch("toolr0_lite.models.generation_attention", lambda device, dtype, attention: attention):
                    got["tokens_sdpa"] = tokens_per_s(roles, HAND_WRITTEN)
        if not cache and "grpo" in figures:
            got["step"] = grpo_step_s(roles, config, grpo_steps)
        if (dtype, cache) in (BEFORE_ARM, AFTER_ARM) and "probes" in figures:
            got["probe"] = probes_per_s(roles, HAND_WRITTEN, config)
        del roles
    before = measured[BEFORE_ARM]
    if "generate" in figures:
        line(f"{name} generate_tokens_per_s", before["tokens"], measured["bfloat16", False]["tokens"])
        line(f"{name} generate_tokens_per_s bfloat16 sdpa→eager", measured["bfloat16", False]["tokens_sdpa"],
             measured["bfloat16", False]["tokens"])  # fmt: skip
    if "grpo" in figures:
        line(f"{name} grpo_step_seconds", before["step"], measured["bfloat16", False]["step"], seconds=True)
    if "eval" in figures:
        line(f"{name} eval_items_per_s prefix_cache", before["eval"], measured["float32", True]["eval"])
        line(f"{name} eval_items_per_s bfloat16", before["eval"], measured["bfloat16", False]["eval"])
        line(f"{name} eval_items_per_s both", before["eval"], measured[AFTER_ARM]["eval"])
    if "probes" in figures:
        line(f"{name} probe_tasks_per_s both", before["probe"], measured[AFTER_ARM]["probe"])


def iteration_minutes(settings: dict) -> float:
    config = load_config("small_cpu", model=settings)
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        run_selfplay(config, out=out, log=lambda _: None)
        return (time.perf_counter() - start) / 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=["smollm2", "qwen0.5b"], choices=["smollm2", "qwen0.5b"],
                        help="models for the per-model figures; none: only --iteration")
    parser.add_argument("--gguf", type=Path, default=OFFLINE_QWEN, help="the 0.5B GGUF file (offline_qwen.py)")
    parser.add_argument("--items", type=int, default=16, help="BFCL items per evaluation figure")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--grpo-steps", type=int, default=2, help="Solver GRPO steps timed per dtype")
    parser.add_argument("--figures", nargs="+", default=list(FIGURES), choices=FIGURES,
                        help="which per-model figures to measure (each loads only the arms it compares)")
    parser.add_argument("--iteration", action="store_true", help="also time one small_cpu iteration each way")
    args = parser.parse_args()
    if not cpu_runs_bfloat16():
        print("this processor has no native bfloat16 (avx512_bf16/amx_bf16/bf16): dtype auto keeps float32 here")
    sources = {"smollm2": SMOLLM2, "qwen0.5b": str(args.gguf)}
    for name in args.models:
        if name == "qwen0.5b" and not args.gguf.is_file():
            print(f"# qwen0.5b: {args.gguf} is not there; run `python benchmarks/offline_qwen.py` first (skipped)")
            continue
        bench_model(name, sources[name], args.items, args.max_new_tokens, args.grpo_steps, set(args.figures))
    if args.iteration:
        line("small_cpu iteration_minutes", iteration_minutes(BEFORE), iteration_minutes(AFTER), seconds=True)


if __name__ == "__main__":
    sys.exit(run_entry_point("bench_cpu_speed", main))
