"""Does the loop learn on a GPU? The base Solver on BFCL, then self-play iterations, each Solver scored, in a time budget.

The same measurement as learn_cpu.py (`common.learn`), shaped for one GPU and a fixed window: the `colab_t4`
preset by default (the model source is yours: a Hub id, a folder or a .gguf file), every BFCL item of the
non-live categories and irrelevance, asked in BFCL's own prompt mode so the numbers read against the
leaderboard (`--prompt kit`: the Solver's prompt with its worked example, as learn_cpu.py), and the fixed
held-out set. The base Solver is scored first; then each iteration is trained and its Solver scored at once,
the held-out set before BFCL. No iteration starts that the last one's duration says would end after
`--minutes`, so the window closes on a finished, scored iteration (the first always runs: size the window
for it). It writes learning.jsonl and learning.png after every checkpoint, prints a line per step of each
phase, and resumes when run again.

    python benchmarks/learn_gpu.py --model Qwen/Qwen2.5-0.5B-Instruct --minutes 8 --out runs/learn_gpu
    python benchmarks/learn_gpu.py --preset tiny --minutes 1 --out /tmp/smoke   # the script itself, on CPU
    python benchmarks/learn_gpu.py --model m.gguf --minutes 8 --set model.load_in_4bit=false   # no bitsandbytes
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from common import MEASURES, learn, print_table, use_heldout, write_jsonl

from toolr0_lite.config import parse_sets, run_entry_point
from toolr0_lite.plots import plot_learning
from toolr0_lite.rundir import read_jsonl


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="replaces the preset's model source: a Hub id, a folder or a .gguf file")
    parser.add_argument("--preset", default="colab_t4")
    parser.add_argument("--minutes", type=float, required=True, help="the window: no iteration starts that would end after it")
    parser.add_argument("--iterations", type=int, default=3, help="at most this many")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bfcl-items", type=int, help="a seeded subset of about N BFCL items (default: the preset's)")
    parser.add_argument("--prompt", choices=["bfcl", "kit"], default="bfcl",
                        help="how BFCL is asked: the leaderboard's prompt mode, or the Solver's own prompt")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="change a preset setting, as `toolr0-lite run --set` does (e.g. generator.steps=10)")
    parser.add_argument("--heldout", metavar="FILE",
                        help="score on this held-out set (a heldout.jsonl an earlier run wrote) instead of writing one")
    parser.add_argument("--out", default="runs/learn_gpu")
    args = parser.parse_args()
    overrides = parse_sets(args.set)  # a mistyped setting stops here, before any model loads
    start, out = time.time(), Path(args.out)
    use_heldout(args.heldout, out)  # checked before any model loads too
    print(f"learn_gpu: {args.preset}, model {args.model or 'of the preset'}, "
          f"{torch.cuda.get_device_name() if torch.cuda.is_available() else 'CPU'}, {args.minutes} min", flush=True)
    rows = [r for r in read_jsonl(out / "learning.jsonl") if r["seed"] != args.seed]

    def keep(row: dict) -> None:  # an iteration's row carries its peak memory, from the run's own metrics
        rows.append(row)
        write_jsonl(out / "learning.jsonl", rows)
        plot_learning(rows, MEASURES, out / "learning.png", f"Learning curve: {args.preset} on a GPU")
        print(f"learn_gpu: {row['after']} scored at {(time.time() - start) / 60:.1f} min", flush=True)

    learn(out / f"seed_{args.seed}", args.seed, args.iterations, overrides, args.preset, model=args.model,
          bfcl_items=args.bfcl_items, prompt=args.prompt, deadline=start + 60 * args.minutes, on_row=keep)  # fmt: skip
    print_table(rows)
    print(f"learn_gpu: {(time.time() - start) / 60:.1f} min; {out / 'learning.jsonl'}, {out / 'learning.png'}")


if __name__ == "__main__":
    sys.exit(run_entry_point("learn_gpu", main))
