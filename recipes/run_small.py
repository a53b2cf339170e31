"""Run Tool-R0 self-play at a small size: `small_cpu` on a CPU machine, `colab_t4` on a GPU.

    python recipes/run_small.py                      # the right preset for this machine
    python recipes/run_small.py --preset tiny        # a one-minute smoke run
    python recipes/run_small.py --config my.yaml --iterations 2 --out runs/mine

Run the same command again after a crash: it resumes where it stopped.
"""

import argparse
import sys

import torch

from toolr0_lite.config import ConfigError
from toolr0_lite.selfplay import run_selfplay
from toolr0_lite.selfplay_config import load_config

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", help="tiny, small_cpu, colab_t4 or paper (default: by machine)")
    parser.add_argument("--config", help="a YAML file; it overrides the preset's values")
    parser.add_argument("--iterations", type=int)
    parser.add_argument("--out", help="run directory; an existing one is resumed")
    args = parser.parse_args()
    preset = args.preset or (None if args.config else "colab_t4" if torch.cuda.is_available() else "small_cpu")
    try:
        config = load_config(preset=preset, path=args.config, iterations=args.iterations, out=args.out)
    except ConfigError as e:
        sys.exit(f"run_small: config error: {e}")
    print(f"run_small: preset {preset or '-'}, model {config.model.source}, {config.iterations} iteration(s)")
    run_selfplay(config)
