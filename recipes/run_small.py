"""Run Tool-R0 self-play at a small size: `small_cpu` on a CPU machine, `colab_t4` on a GPU.

    python recipes/run_small.py                      # the right preset for this machine
    python recipes/run_small.py --preset tiny        # a one-minute smoke run
    python recipes/run_small.py --config my.yaml --iterations 2 --out runs/mine
    python recipes/run_small.py --preset tiny --set generator.steps=4 --set spec.no_call_share=0.2

Run the same command again after a crash: it resumes where it stopped. Run it with a larger --iterations
on a finished run to continue it.
"""

import argparse
import sys

import torch

from toolr0_lite.config import run_entry_point
from toolr0_lite.distributed import is_main
from toolr0_lite.selfplay import run_selfplay
from toolr0_lite.selfplay_config import load_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", help="tiny, small_cpu, qwen05_cpu, colab_t4 or paper (default: by machine)")
    parser.add_argument("--config", help="a YAML file; it overrides the preset's values")
    parser.add_argument("--iterations", type=int, help="raise it on a finished run to continue that run")
    parser.add_argument("--out", help="run directory; an existing one is resumed")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="any setting, e.g. --set generator.steps=10 (repeatable; `toolr0-lite config` lists them)")
    args = parser.parse_args()
    preset = args.preset or (None if args.config else "colab_t4" if torch.cuda.is_available() else "small_cpu")
    config = load_config(preset=preset, path=args.config, sets=args.set, iterations=args.iterations, out=args.out)
    if is_main():  # one console under torchrun, as the loop's own
        print(f"run_small: preset {preset or '-'}, model {config.model.source}, {config.iterations} iteration(s)")
    run_selfplay(config)


if __name__ == "__main__":
    sys.exit(run_entry_point("run_small", main))
