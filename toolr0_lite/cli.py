"""Console entry: `toolr0-lite run CONFIG_OR_PRESET [--iterations N] [--out DIR]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from toolr0_lite.config import ConfigError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="toolr0-lite", description="Tool-R0 self-play on one GPU.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run or resume self-play")
    run.add_argument("config", help="a YAML config file, or a preset name: tiny, small_cpu, colab_t4, paper")
    run.add_argument("--iterations", type=int, help="override the number of iterations")
    run.add_argument("--out", help="the run directory (an existing one is resumed)")
    args = parser.parse_args(argv)

    from toolr0_lite.selfplay import run_selfplay
    from toolr0_lite.selfplay_config import load_config

    try:
        is_file = args.config.endswith((".yaml", ".yml")) or Path(args.config).is_file()
        config = load_config(path=args.config if is_file else None, preset=None if is_file else args.config,
                             iterations=args.iterations, out=args.out)  # fmt: skip
    except ConfigError as e:
        print(f"toolr0-lite: config error: {e}", file=sys.stderr)
        return 2
    run_selfplay(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
