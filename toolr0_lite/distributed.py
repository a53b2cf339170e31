"""Several processes, one per GPU (or CPU process under `torchrun`): who generates what, who writes.

The engine is accelerate's `PartialState` over torch.distributed, the one TRL's GRPOTrainer already runs on;
the kit adds no scheduler. The kit's own generation (synthesis, agreement, difficulty labels, evaluation)
follows TRL's shape: every rank builds the same list of prompts from the same seed, generates its
contiguous share (as accelerate's `split_between_processes` cuts it), and the answers come back to every
rank in the list's order (`gather_object`). Only the main process writes the run directory; the others
follow its state.

With one process every function here is a no-op (the share is the whole list), so there is one code path.
"""

from __future__ import annotations

import os
from typing import Any

import torch


def state():
    """accelerate's process state (one per process: accelerate keeps it, later calls return the same). On a
    CPU-only machine it is asked for CPU processes, as TRL's `use_cpu` asks, so that `torchrun` on CPUs gives
    a gloo group (without `cpu=True` accelerate sees none)."""
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def join_launch() -> None:
    """Join the launch's process group, if there is one, and pin this process to its GPU (cuda:LOCAL_RANK),
    so that a model loaded next goes there; call it before any model loads."""
    state()


def rank() -> int:
    return state().process_index


def world_size() -> int:
    return state().num_processes


def is_main() -> bool:
    return state().is_main_process


def wait() -> None:
    """Every process waits here until all have arrived (a barrier); nothing with one process."""
    state().wait_for_everyone()


def share(n: int, ranks: int | None = None, index: int | None = None) -> range:
    """The indices of a list of `n` items that process `index` of `ranks` handles: contiguous, the first
    `n % ranks` processes one more (accelerate's `split_between_processes`)."""
    ranks = world_size() if ranks is None else ranks
    index = rank() if index is None else index
    base, extra = divmod(n, ranks)
    start = index * base + min(index, extra)
    return range(start, start + base + (index < extra))


def owners(n: int) -> list[int]:
    """The rank that handles each of `n` items under `share`, e.g. [0, 0, 1] for 3 items on 2 processes."""
    ranks = world_size()
    return [r for r in range(ranks) for _ in share(n, ranks, r)]


def gather(items: list) -> list:
    """Every process's list, concatenated in rank order, on every process (the input itself with one)."""
    if world_size() == 1:
        return items
    from accelerate.utils import gather_object

    return gather_object(items)


def generate_shared(roles, role: str, prompts: list[Any], **kwargs) -> list:
    """`roles.generate` over a list that every process holds whole: each generates its share, all get all.

    Each share is generated with the caller's seed plus the rank, so the processes do not draw the same
    random stream. Use plain `roles.generate` for prompts that are already a process's own (e.g. the probes
    of the completions TRL gave this rank).
    """
    mine = share(len(prompts))
    seed = kwargs.pop("seed", 0) + rank()
    return gather(roles.generate(role, prompts[mine.start : mine.stop], seed=seed, **kwargs) if len(mine) else [])


def open_run(root):
    """The run directory as this process sees it: the main process writes it (and cuts it back on resume),
    the others read the state it left and write nothing; every commit is a barrier for all."""
    from toolr0_lite.rundir import RunDir

    return RunDir(root, writer=is_main(), sync=wait)


def check_launch(environ: dict | None = None) -> None:
    """Launch settings the kit cannot run, refused before any model loads. ZeRO-3 partitions every weight
    across the GPUs, while the kit swaps the roles' LoRA weights in place and generates outside TRL's trainer,
    which need whole weights on each GPU."""
    from toolr0_lite.config import ConfigError

    environ = os.environ if environ is None else environ
    if environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true" and environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE") == "3":
        raise ConfigError("DeepSpeed ZeRO-3 is not supported (it splits the weights the kit swaps between roles); "
                          "launch with recipes/accelerate/zero2.yaml, or ddp.yaml where a GPU holds the whole model")  # fmt: skip
