"""One process of a `torchrun` launch of the CLI, for tests/test_distributed.py.

    torchrun --nproc_per_node 2 tests/distributed_run.py [--sound] run tiny --out DIR ...

`--sound`: the tiny random model writes noise, so every Generator completion is read as a sound task of its
own (a weather question named by the text's checksum): the run then has probes and agreement answers to
split. On every rank but 0 an audit hook notes each write under DIR, and the process exits with status 3
naming them: only the main process may write the run directory.
"""

import atexit
import os
import sys
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # helpers.py


def read_as_sound_tasks() -> None:
    from helpers import completion_of, sound_task

    import toolr0_lite.pipeline
    import toolr0_lite.selfplay
    from toolr0_lite.parsing import parse_generator_output

    def parse(text: str):
        word = "".join(chr(ord("a") + int(d)) for d in str(zlib.crc32(text.encode())))  # dedup ignores numbers
        return parse_generator_output(completion_of(sound_task(question=f"What will the weather be in Oslo over the "
                                                                         f"next 3 days? Request {word}.")))  # fmt: skip

    toolr0_lite.selfplay.parse_generator_output = parse
    toolr0_lite.pipeline.parse_generator_output = parse


def refuse_writes_under(root: str) -> None:
    writes: list[str] = []

    def audit(event: str, args: tuple) -> None:
        if event == "open" and str(args[0]).startswith(root):
            mode, flags = args[1], args[2]
            if (mode and any(c in mode for c in "wax+")) or (not mode and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)):
                writes.append(f"open {args[0]} {mode or flags}")
        elif event in ("os.mkdir", "os.rename", "os.replace", "os.remove", "os.truncate") and str(args[0]).startswith(root):
            writes.append(f"{event} {args[0]}")

    def report() -> None:
        if writes:
            print(f"rank {os.environ['RANK']} wrote under the run directory: {writes[:5]}", file=sys.stderr, flush=True)
            os._exit(3)

    sys.addaudithook(audit)
    atexit.register(report)


def main() -> int:
    args = sys.argv[1:]
    if "--sound" in args:
        args.remove("--sound")
        read_as_sound_tasks()
    if int(os.environ.get("RANK", "0")) != 0:
        refuse_writes_under(str(Path(args[args.index("--out") + 1]).resolve()))
    from toolr0_lite.cli import main as cli

    return cli(args)


if __name__ == "__main__":
    sys.exit(main())
