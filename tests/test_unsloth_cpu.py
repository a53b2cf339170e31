"""Opt-in: the Unsloth backend's code on CPU (unsloth falls back to a CPU mode without a GPU).

Run with TOOLR0_TEST_UNSLOTH=1 in an environment where unsloth imports (e.g. `pip install --no-deps
unsloth==2026.10.9 unsloth_zoo` over trl 1.14). The backend ran for real on a GPU: see
benchmarks/RESULTS.md.
"""

import importlib.util
import os

import pytest
import torch

pytestmark = pytest.mark.skipif(
    os.environ.get("TOOLR0_TEST_UNSLOTH") != "1" or importlib.util.find_spec("unsloth") is None,
    reason="opt-in: set TOOLR0_TEST_UNSLOTH=1 with unsloth installed",
)


def test_unsloth_backend_loads_swaps_and_saves(tmp_path):
    import unsloth  # noqa: F401  (before transformers)

    from toolr0_lite.models import ModelConfig, RoleModel
    from toolr0_lite.sources import build_tiny_model, build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer()
    build_tiny_model(tokenizer).save_pretrained(tmp_path / "tiny")
    tokenizer.save_pretrained(tmp_path / "tiny")
    roles = RoleModel.load(ModelConfig(source=str(tmp_path / "tiny"), backend="unsloth", lora_r=4, dtype="float32"))
    assert roles.backend == "unsloth" and "default" in roles.model.peft_config

    with roles.active("solver"), torch.no_grad():
        for name, p in roles.model.named_parameters():
            if "lora_B" in name:
                p.add_(0.5)
    ids = roles.tokenizer("The forecast for Oslo", return_tensors="pt")
    with torch.no_grad():
        generator = roles.model(**ids).logits
        with roles.active("solver"):
            solver = roles.model(**ids).logits
    assert not torch.allclose(generator, solver)
    out = roles.generate("solver", [[{"role": "user", "content": "hi"}]], n=2, temperature=0.7, max_new_tokens=4)
    assert len(out[0]) == 2
    assert (roles.save_role("solver", tmp_path / "solver") / "adapter_model.safetensors").is_file()
