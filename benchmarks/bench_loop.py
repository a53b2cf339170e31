"""One self-play iteration per preset (default: tiny, then small_cpu): where the time goes.

Prints wall time per phase, the Generator's tokens/s in synthesis, peak resident memory, and the share of
the loop's time spent outside model calls (target <= 5%). Model calls are every `RoleModel.generate` and
TRL's `GRPOTrainer.train`, less the time TRL spends inside our reward functions (parsing and scoring are
ours; the frozen-Solver probes they make are `generate` calls and count as model time). Loading the model
is reported apart.

    python benchmarks/bench_loop.py [--presets tiny small_cpu]
"""

from __future__ import annotations

import argparse
import functools
import resource
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from trl import GRPOTrainer

from toolr0_lite import selfplay
from toolr0_lite.config import run_entry_point
from toolr0_lite.models import RoleModel
from toolr0_lite.rundir import read_jsonl
from toolr0_lite.selfplay_config import load_config

SPENT: dict[str, float] = defaultdict(float)


def timed(key: str, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            SPENT[key] += time.perf_counter() - start

    return wrapper


def instrument() -> None:
    RoleModel.load = classmethod(timed("load", RoleModel.load.__func__))
    RoleModel.generate = timed("generate", RoleModel.generate)
    GRPOTrainer.train = timed("train", GRPOTrainer.train)
    for reward in (selfplay.GeneratorReward, selfplay.SolverReward):
        reward.__call__ = timed("reward", reward.__call__)


def bench(preset: str) -> None:
    SPENT.clear()
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        selfplay.run_selfplay(load_config(preset, out=out, iterations=1), log=lambda line: None)
        total = time.perf_counter() - start
        metrics = read_jsonl(Path(out) / "metrics.jsonl")
    loop = total - SPENT["load"]
    model = SPENT["generate"] + SPENT["train"] - SPENT["reward"]
    phases = {m["phase"]: m for m in metrics if m["phase"] in ("generator_done", "synthesis", "solver_done")}
    print(f"{preset}: one iteration in {total:.1f} s (model load {SPENT['load']:.1f} s)")
    print(f"  Generator phase {phases['generator_done']['seconds']:.1f} s, synthesis {phases['synthesis']['seconds']:.1f} s "
          f"({phases['synthesis']['generator_tokens_per_s']} new tokens/s), Solver phase {phases['solver_done']['seconds']:.1f} s")
    print(f"  model calls {model:.1f} s of the loop's {loop:.1f} s; outside model calls: {100 * (loop - model) / loop:.1f}% "
          "(target <= 5%)")
    print(f"  peak resident memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="*", default=["tiny", "small_cpu"])
    presets = parser.parse_args().presets
    instrument()
    for preset in presets:
        bench(preset)


if __name__ == "__main__":
    sys.exit(run_entry_point("bench_loop", main))
