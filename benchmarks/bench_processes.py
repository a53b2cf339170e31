"""One process against two: the same run under `python -m toolr0_lite.cli run` and `torchrun --nproc_per_node 2`.

For each model it runs one iteration of the `tiny` preset's sizes (the tiny random model; SmolLM2-135M from
its wheel with `--models smollm2`) once with one process and once with two, each in a fresh folder, and prints
per run the wall time (imports and model loads included), each phase's seconds from metrics.jsonl, and how the
candidates and probes were shared between the ranks; then `wall_seconds: one two ratio` (ratio = speed-up).

On a 2-core machine two processes get one core each where one process had both, so this shows that the work
is split and what the split costs, not a speed-up; on N GPUs each process has its own GPU.

    python benchmarks/bench_processes.py [--models tiny smollm2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from toolr0_lite.rundir import read_jsonl

SOURCES = {"tiny": "tiny", "smollm2": "smollm2-135m"}
PHASES = ("generator_done", "synthesis", "solver_done")


def run(model: str, processes: int, out: Path) -> dict:
    command = [sys.executable, "-m", "toolr0_lite.cli", "run", "tiny", "--out", str(out),
               "--set", f"model.source={SOURCES[model]}"]  # fmt: skip
    if processes > 1:
        command[1:2] = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes), "-m"]
    threads = str(max(1, (os.cpu_count() or 1) // processes))  # the cores shared out, as torchrun would not
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": threads})
    wall = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"{model}, {processes} process(es) failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    metrics = read_jsonl(out / "metrics.jsonl")
    seconds = {m["phase"]: m["seconds"] for m in metrics if m["phase"] in PHASES}
    synthesis = next(m for m in metrics if m["phase"] == "synthesis")
    probes: dict[str, int] = {}
    for m in metrics:
        for r, n in m.get("probed_by_rank", {}).items():
            probes[r] = probes.get(r, 0) + n
    return {"model": model, "processes": processes, "threads_each": int(threads), "wall_seconds": round(wall, 1),
            **{f"{p}_seconds": seconds.get(p) for p in PHASES}, "candidates_by_rank": synthesis["candidates_by_rank"],
            "probes_by_rank": probes}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["tiny"], choices=sorted(SOURCES))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            one, two = (run(model, n, Path(tmp) / f"{model}-{n}") for n in (1, 2))
            for result in (one, two):
                print(json.dumps(result), flush=True)
            print(f"{model} wall_seconds: {one['wall_seconds']} {two['wall_seconds']} "
                  f"{one['wall_seconds'] / two['wall_seconds']:.2f}x", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
