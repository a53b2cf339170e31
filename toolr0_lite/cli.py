"""Console entry: `toolr0-lite run CONFIG_OR_PRESET` (self-play), `eval RUN_DIR` (evaluation), `report RUN_DIR`,
`config CONFIG_OR_PRESET` (the resolved settings with their help), `branch RUN_DIR UNIT` (a paired ablation)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from toolr0_lite.bfcl import CATEGORIES, GROUPS, NON_LIVE, PROMPTS, expand_categories
from toolr0_lite.config import ConfigError, run_entry_point
from toolr0_lite.prompts import EXAMPLE_LAST


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="toolr0-lite", description="Tool-R0 self-play on one GPU.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run or resume self-play")
    run.add_argument("config", help="a YAML config file, or a preset name: tiny, small_cpu, qwen05_cpu, colab_t4, paper")
    run.add_argument("--iterations", type=int, help="override the number of iterations (raise it to continue a run)")
    run.add_argument("--out", help="the run directory (an existing one is resumed)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="any setting, e.g. --set generator.steps=10 (repeatable; `toolr0-lite config` lists them)")
    config = commands.add_parser("config", help="print a preset's or file's resolved settings, each with its help")
    config.add_argument("config", help="a YAML config file, or a preset name")
    config.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="as for run")
    branch = commands.add_parser("branch", help="copy a run as it stood after one finished phase, to run what follows "
                                                "with other settings (a paired ablation on the same tasks)")  # fmt: skip
    branch.add_argument("run", help="a run directory")
    branch.add_argument("after", metavar="UNIT", help="a finished phase of it, e.g. iter_00/synthesis (its state.json "
                                                       "lists them)")  # fmt: skip
    branch.add_argument("--out", required=True, help="the new run directory")
    branch.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting for the branch, e.g. --set solver.learning_rate=2e-5 (repeatable)")

    ev = commands.add_parser("eval", help="score a run's Solver (or any model) on BFCL and held-out tasks, offline")
    ev.add_argument("run", nargs="?", help="a run directory: its model, its latest Solver adapter, its held-out tasks")
    ev.add_argument("--model", help="instead of a run: tiny, smollm2-135m, a Hugging Face id or a local folder")
    ev.add_argument("--adapter", help="with --model: a Solver adapter folder (PEFT) to score")
    ev.add_argument("--tasks", help="a JSONL of tasks to score instead of the run's heldout.jsonl")
    ev.add_argument("--categories", nargs="+", metavar="CATEGORY",
                    help=f"BFCL categories (default: the seven non-live ones): {', '.join(CATEGORIES)}; "
                         f"or a group: {', '.join(GROUPS)}; 'none' skips BFCL")  # fmt: skip
    ev.add_argument("--prompt", choices=PROMPTS, default="kit",
                    help="kit: the Solver's own prompt (what training changed); bfcl: the leaderboard's prompt "
                         "and decoder for models without native function calling (compare with published scores)")  # fmt: skip
    ev.add_argument("--limit", type=int, help="a seeded subset of about N BFCL items, spread over the categories")
    ev.add_argument("--base", action="store_true", help="also score the base model without the adapter")
    ev.add_argument("--no-exemplar", action="store_true", help="with --model: no solved example in the prompt")
    ev.add_argument("--think-prefill", action="store_true", help="with --model: begin each answer with <think>")
    ev.add_argument("--example-pair", action="store_true", help="with --model: a call and a no-call solved example")
    ev.add_argument("--example-last", choices=EXAMPLE_LAST, default="alternate",
                    help="with --example-pair: which kind comes last (alternate: each every other prompt)")
    ev.add_argument("--max-new-tokens", type=int, default=256)
    ev.add_argument("--max-batch-tokens", type=int, metavar="N",
                    help="with --model: rows × tokens per generate call (default 16384; a big GPU takes far more)")
    ev.add_argument("--out", help="where results go (default: RUN/eval, or runs/eval for --model)")
    report = commands.add_parser("report", help="render a run's curriculum as report.md with figures")
    report.add_argument("run", help="a run directory")
    args = parser.parse_args(argv)
    commands = {"run": lambda: _run(args), "eval": lambda: _eval(args, ev), "report": lambda: _report(args),
                "config": lambda: _config(args), "branch": lambda: _branch(args)}  # fmt: skip
    return run_entry_point("toolr0-lite", commands[args.command])


def _load(args: argparse.Namespace, **overrides):
    from toolr0_lite.selfplay_config import load_config

    is_file = args.config.endswith((".yaml", ".yml")) or Path(args.config).is_file()
    return load_config(path=args.config if is_file else None, preset=None if is_file else args.config,
                       sets=args.set, **overrides)  # fmt: skip


def _run(args: argparse.Namespace) -> int:
    from toolr0_lite.selfplay import run_selfplay

    run_selfplay(_load(args, iterations=args.iterations, out=args.out))
    return 0


def _config(args: argparse.Namespace) -> int:
    from toolr0_lite.config import describe

    print(describe(_load(args)))
    return 0


def _branch(args: argparse.Namespace) -> int:
    from toolr0_lite.branch import branch_run

    config = branch_run(args.run, args.after, args.out, args.set)
    print(f"toolr0_lite: {config.out} is {args.run} after {args.after} (branch.json names what changed); run what "
          f"follows with: toolr0-lite run {Path(config.out) / 'config.yaml'}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from toolr0_lite.report import render_report

    try:
        path = render_report(args.run)
    except FileNotFoundError as e:
        print(f"toolr0-lite: {e}", file=sys.stderr)
        return 2
    print(f"toolr0_lite: report in {path}")
    return 0


def _eval(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from toolr0_lite.evaluate import EvalConfig, evaluate_model, evaluate_run
    from toolr0_lite.records import Task
    from toolr0_lite.rundir import read_jsonl

    if (args.run is None) == (args.model is None):
        parser.error("give a run directory or --model, not both")
    categories = list(NON_LIVE) if args.categories is None else expand_categories([c for c in args.categories if c != "none"])
    config = EvalConfig(categories=categories, prompt=args.prompt, limit=args.limit, base=args.base,
                        exemplars=not args.no_exemplar, think_prefill=args.think_prefill, example_pair=args.example_pair,
                        example_last=args.example_last,
                        max_new_tokens=args.max_new_tokens)  # fmt: skip
    tasks = None
    if args.tasks:
        if not Path(args.tasks).is_file():
            raise ConfigError(f"--tasks {args.tasks}: no such file; give a JSONL of tasks (e.g. a run's heldout.jsonl)")
        tasks = [Task.from_dict(d) for d in read_jsonl(Path(args.tasks))]
    if args.run:
        evaluate_run(args.run, config, out=args.out, tasks=tasks)
    else:
        evaluate_model(args.model, config, out=args.out or "runs/eval", adapter=args.adapter, tasks=tasks,
                       max_batch_tokens=args.max_batch_tokens)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
