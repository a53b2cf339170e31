"""Run Tool-R0 self-play at a small size: `small_cpu` on a CPU machine, `colab_t4` on a GPU.

The self-play loop is not built yet (it is the next milestone); this script says so and stops.
"""

import sys

if __name__ == "__main__":
    sys.exit(
        "toolr0_lite: the self-play loop is not built yet, so there is nothing to run. "
        "What exists is the method's pure core (spec, prompts, parsing, rewards, pipeline): run `pytest` to see it work."
    )
