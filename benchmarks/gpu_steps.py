"""Time one Generator-phase and one Solver-phase step of the `colab_t4` preset on a GPU: TRL's default path vs the kit's.

Two arms, each in a fresh process, on a Qwen2.5-1.5B-shaped model with random weights (gpu_check.py writes
it; the shapes, and so the memory and speed, are the real model's), at the preset's sizes (8 completions a
step, 512 new tokens for the Generator, 256 for the Solver; random weights never stop early, so every
completion runs to the limit on both arms):

- `trl-default`: what TRL + PEFT give on their own: a bitsandbytes 4-bit base, HF `generate` on the PEFT model
  for every step's rollouts (`steps_per_generation: 1`).
- `kit`: the preset as shipped: the same 4-bit PEFT base with `steps_per_generation: 4` (four steps' rollouts
  in one batched call: decoding is launch-bound, so a wider batch costs about the same per token).
- `kit-unsloth`: the same with `backend: unsloth` (its 4-bit base and its patched GRPOTrainer, which rolls out
  in Unsloth's inference mode).

Each arm runs its phases through the kit's own `generator_phase` and `solver_phase` and reports seconds
per optimizer step (phase time / steps, trainer set-up included), each TRL rollout call's seconds and
completions, the completions rolled out per step (so arms are compared per unit of work: a trainer whose
defaults changed the batch would show it here) and peak allocated GPU memory.

    python benchmarks/gpu_steps.py --json gpu_steps.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from common import child_main, run_arms, write_random_model  # before torch: Unsloth patches on import

from toolr0_lite.config import run_entry_point

ARMS = {
    "trl-default": dict(backend="peft", steps=1, steps_per_generation=1),
    "kit": dict(backend="peft", steps=4, steps_per_generation=4),
    "kit-unsloth": dict(backend="unsloth", steps=4, steps_per_generation=4),
}


def run_arm(name: str, folder: str) -> dict:
    arm = ARMS[name]
    if arm["backend"] == "unsloth":
        import unsloth  # noqa: F401  (before transformers and trl: it patches them)
    import torch

    from toolr0_lite.models import RoleModel
    from toolr0_lite.prompts import EXEMPLARS
    from toolr0_lite.records import Task
    from toolr0_lite.rundir import RunDir
    from toolr0_lite.selfplay import generator_phase, solver_phase
    from toolr0_lite.selfplay_config import load_config

    phase = {"steps": arm["steps"], "steps_per_generation": arm["steps_per_generation"]}
    config = load_config("colab_t4", out=f"/tmp/gpu_steps_{name}", model={"source": folder, "backend": arm["backend"]},
                         generator=phase, solver=phase)  # fmt: skip
    step = config.generator.prompts_per_step * config.generator.group_size
    result: dict = {"arm": name, "gpu": torch.cuda.get_device_name(), **arm,
                    "generator_completion_tokens": config.generator.max_completion_length,
                    "solver_completion_tokens": config.solver.max_completion_length,
                    "configured_completions_per_step": step}  # fmt: skip
    start = time.perf_counter()
    roles = RoleModel.load(config.model)
    result["load_s"] = round(time.perf_counter() - start, 1)
    result["after_load_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    run = RunDir(config.out)
    time_rollouts()
    tasks = [Task.from_dict(t.to_dict()) for t, _ in EXEMPLARS]
    for role, call in (("generator", lambda: generator_phase(roles, config, run, 0)),
                       ("solver", lambda: solver_phase(roles, tasks, config, run, 0))):  # fmt: skip
        torch.cuda.reset_peak_memory_stats()
        torch.cuda.synchronize()
        start, first_call = time.perf_counter(), len(ROLLOUTS)
        call()
        torch.cuda.synchronize()
        seconds, calls = time.perf_counter() - start, ROLLOUTS[first_call:]
        result[role] = {"seconds": round(seconds, 1), "seconds_per_step": round(seconds / arm["steps"], 2),
                        "rollout_calls_per_step": round(len(calls) / arm["steps"], 2),
                        "completions_per_step": round(sum(c["completions"] or 0 for c in calls) / arm["steps"], 1),
                        "rollouts": calls, "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)}  # fmt: skip
        print(f"{name} {role}: {json.dumps(result[role])}", flush=True)
    return result


ROLLOUTS: list[dict] = []  # each `_generate_single_turn` call (TRL's rollouts): seconds (GPU-synchronised), rows


def time_rollouts() -> None:
    """Wrap TRL's rollout method (Unsloth's patched class when Unsloth is imported) to time each call."""
    import torch
    import trl

    cls = trl.GRPOTrainer
    inner = cls._generate_single_turn

    def timed(self, *args, **kwargs):
        torch.cuda.synchronize()
        start = time.perf_counter()
        out = inner(self, *args, **kwargs)
        torch.cuda.synchronize()
        rows = len(args[0]) if args else None  # one prompt per completion (TRL repeats each num_generations times)
        ROLLOUTS.append({"seconds": round(time.perf_counter() - start, 2), "completions": rows})
        return out

    cls._generate_single_turn = timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default="gpu_steps.json")
    parser.add_argument("--folder", default="/tmp/qwen2.5-1.5b-random")
    parser.add_argument("--arms", nargs="*", default=list(ARMS), choices=list(ARMS))
    parser.add_argument("--timeout", type=int, default=240, help="seconds allowed per arm")
    args = parser.parse_args()
    folder = Path(args.folder)
    if not (folder / "config.json").exists():
        write_random_model(folder)
    results = run_arms(__file__, args.arms, folder, args.timeout, "arm", Path(args.json))
    done = {r["arm"]: r for r in results if "error" not in r}
    for arm in (a for a in done if a != "trl-default" and "trl-default" in done):
        for role in ("generator", "solver"):
            base, fast = done["trl-default"][role], done[arm][role]
            print(f"{role} step: TRL default {base['seconds_per_step']} s, {arm} {fast['seconds_per_step']} s: "
                  f"{base['seconds_per_step'] / fast['seconds_per_step']:.1f}x; {fast['completions_per_step']} completions "
                  f"and {fast['rollout_calls_per_step']} rollout calls a step; peak {fast['peak_gib']} GiB")  # fmt: skip


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child_main(run_arm, "arm")
    else:
        sys.exit(run_entry_point("gpu_steps", main))
