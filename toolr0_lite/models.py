"""One base model, two roles: the Generator and the Solver as LoRA weights swapped through one adapter slot.

Why a swap and not two named PEFT adapters: PEFT supports several named adapters, but Unsloth does not.
Its `get_peft_model` creates only the adapter "default", its fast LoRA kernels assume a single active
adapter, and its vLLM path reads `peft_config["default"]` by name. A design that holds on both backends
is therefore: **one "default" slot on the base model, and each role's LoRA weights kept as a small state
dict**. Making a role active copies its weights into the slot in place (same tensors, so an optimizer
that holds them is undisturbed) and stashes the previous role's. Both roles share r, alpha and target
modules; the base weights exist once. With `shared_weights` both roles use one set of LoRA weights: the
paper's shared-model ablation, with no code path of its own.

"Frozen" role = generation under `torch.inference_mode()` with that role's weights in the slot.
"""

from __future__ import annotations

import importlib.util
import json
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch

from toolr0_lite.config import ConfigError, setting
from toolr0_lite.sources import TINY, Source, load_base_model, load_tokenizer, resolve_source

ROLES = ("generator", "solver")
BASE = "base"  # the base model alone, LoRA layers off: a judge that training never moves (`RoleModel.active`)
UNSLOTH_INSTALL = 'pip install "toolr0-lite[gpu]"'


@dataclass
class ModelConfig:
    """The base model, the backend and the LoRA shape shared by both roles."""

    source: str = setting(TINY, "tiny, smollm2-135m, a Hugging Face id, a local folder, or a .gguf file")
    backend: str = setting("auto", "auto (Unsloth on a CUDA GPU when installed, else PEFT), peft or unsloth")
    load_in_4bit: bool = setting(False, "a 4-bit base through bitsandbytes (CUDA only)")
    # auto: bfloat16 on a GPU that has it (else float16); on a CPU, bfloat16 where the processor computes it
    # natively (avx512_bf16/amx_bf16, Arm bf16: about 1.9x float32's generation speed), else float32.
    dtype: str = setting("auto", "auto, float32, bfloat16 or float16 (auto: bfloat16 where the hardware has it)")
    lora_r: int = setting(16, "LoRA rank of both roles")
    lora_alpha: int = setting(32, "LoRA scale numerator: the update is (alpha / r)·BA")
    lora_dropout: float = setting(0.0, "dropout on the LoRA input")
    target_modules: list[str] = setting(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
                                        "the linear layers that get LoRA weights")  # fmt: skip
    shared_weights: bool = setting(False, "ablation: both roles train one set of LoRA weights")
    max_seq_length: int = setting(2048, "Unsloth's context length")
    max_batch_tokens: int = setting(16384, "cap on rows × (prompt + new tokens) per generate call")
    fast_inference: bool = setting(False, "Unsloth + vLLM generation (needs vllm installed)")
    prefix_cache: bool = setting(True, "PEFT backend: read the turns a call's prompts share (system prompt, "
                                       "exemplar) once; speed only: the same answers in float32, in bfloat16 up to "
                                       "rounding ties (Unsloth's inference path keeps its own cache)")
    trust_remote_code: bool = setting(False, "run a model repository's own code: only when you trust it")
    seed: int = setting(0, "seeds the LoRA initialisation")

    def __post_init__(self) -> None:
        if self.backend not in ("auto", "peft", "unsloth"):
            raise ConfigError(f"model.backend: {self.backend!r} is not a backend; use auto, peft or unsloth")
        if self.dtype not in ("auto", "float32", "bfloat16", "float16"):
            raise ConfigError(f"model.dtype: {self.dtype!r}; use auto, float32, bfloat16 or float16")
        for name in ("lora_r", "lora_alpha", "max_seq_length", "max_batch_tokens"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name}: must be a positive integer")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ConfigError("model.lora_dropout: must be in [0, 1)")
        if not self.target_modules:
            raise ConfigError("model.target_modules: name at least one module, e.g. [q_proj, v_proj]")

    def resolved_backend(self) -> str:
        """The backend this machine will run, or a `ConfigError` that says what to install or pick."""
        has_unsloth = importlib.util.find_spec("unsloth") is not None
        has_cuda = torch.cuda.is_available()
        if self.load_in_4bit and not has_cuda:
            raise ConfigError("model.load_in_4bit: 4-bit loading needs a CUDA GPU; set load_in_4bit: false on CPU")
        if self.backend == "unsloth" and not has_unsloth:
            raise ConfigError(f"model.backend: unsloth is not installed; `{UNSLOTH_INSTALL}`, or set backend: peft")
        if self.load_in_4bit and self.backend == "peft" and importlib.util.find_spec("bitsandbytes") is None:
            raise ConfigError(f"model.load_in_4bit: bitsandbytes is not installed; `{UNSLOTH_INSTALL}`")
        if self.backend == "auto":
            return "unsloth" if has_unsloth and has_cuda and self.source != TINY else "peft"
        return self.backend

    def torch_dtype(self) -> torch.dtype:
        if self.dtype != "auto":
            return getattr(torch, self.dtype)
        if not torch.cuda.is_available():
            return torch.bfloat16 if cpu_runs_bfloat16() else torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16

    def dtype_name(self) -> str:
        """The dtype the weights compute in, by name ("bfloat16"), as evaluations record it."""
        return str(self.torch_dtype()).removeprefix("torch.")

    def dtype_note(self) -> str:
        """`dtype_name` for the run's log; says why when `auto` falls back to float32 on a CPU."""
        name = self.dtype_name()
        if self.dtype == "auto" and name == "float32":
            return (f"{name} (dtype auto: this processor has no bfloat16 arithmetic, so a 0.5B run takes about twice "
                    "the minutes or more; RESULTS.md)")  # fmt: skip
        return name

    def check(self) -> Source:
        """Everything that can fail before loading: the backend and the source. Returns the source."""
        self.resolved_backend()
        return resolve_source(self.source)


def cpu_runs_bfloat16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this processor has bfloat16 arithmetic in hardware (read from its feature flags, not guessed).

    x86: avx512_bf16 or amx_bf16; Arm: bf16. Elsewhere (no /proc/cpuinfo, e.g. macOS) False: float32 is safe.
    Without these flags torch still runs bfloat16, converting in software, and it is slower than float32 (0.5B
    model, 2 cores, AVX512F without avx512_bf16: generation 0.48×, a Solver GRPO step 0.48×; RESULTS.md).
    """
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return False
    lines = re.findall(r"^(?:flags|Features)\s*:(.*)$", text, re.MULTILINE)  # one per core; the first will do
    flags = set(lines[0].split()) if lines else set()
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def generation_attention(device: str, dtype: torch.dtype, attention: str) -> str:
    """The attention kernel for the kit's own generation: on a CPU in bfloat16, transformers' `sdpa` is swapped for
    `eager`, whose decoding steps are faster there (0.5B model, 8 padded rows, 2 cores: 139 against 189 ms a step;
    torch's bfloat16 flash kernel for one query position is slow on a CPU; RESULTS.md); elsewhere the model
    keeps its own."""
    return "eager" if device == "cpu" and dtype == torch.bfloat16 and attention == "sdpa" else attention


@dataclass
class Generation:
    """One sampled completion and what it cost."""

    text: str
    prompt_tokens: int
    completion_tokens: int


class RoleModel:
    """The base model with one LoRA slot, and the Generator's and the Solver's LoRA weights.

    Usage: ``model = RoleModel.load(ModelConfig(source="tiny"))``, then
    ``model.generate("solver", prompts, n=8, temperature=0.7)`` for the frozen Solver's answers, or
    ``with model.active("solver"): ...`` to run any code as that role; "base" in either place is the base model
    without LoRA weights.
    """

    def __init__(self, peft_model, tokenizer, config: ModelConfig, backend: str):
        self.model = peft_model
        self.tokenizer = tokenizer
        self.config = config
        self.backend = backend
        self._slot = {n: p for n, p in peft_model.named_parameters() if "lora_" in n}
        if not self._slot:
            raise ConfigError(f"model.target_modules: none of {config.target_modules} is in this model; name its linear layers")
        # Both roles start from the same LoRA initialisation (B = 0: the base model's behaviour).
        self._stash = {} if config.shared_weights else {"solver": self._copy_of_slot()}
        self.active_role = "generator"
        self.stop_ids = _stop_ids(tokenizer)

    # ---------------------------------------------------------------- loading

    @classmethod
    def load(cls, config: ModelConfig) -> RoleModel:
        """Load the base once and give it one LoRA slot, on the configured backend."""
        source = config.check()
        backend = config.resolved_backend()
        if backend == "unsloth":
            model, tokenizer = _load_unsloth(source, config)
        else:
            model, tokenizer = _load_peft(source, config)
        return cls(model, tokenizer, config, backend)

    # ---------------------------------------------------------------- roles

    def _key(self, role: str) -> str:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; the roles are {ROLES}")
        return "shared" if self.config.shared_weights else role

    def _copy_of_slot(self) -> dict[str, torch.Tensor]:
        return {n: p.detach().clone() for n, p in self._slot.items()}

    @torch.no_grad()
    def activate(self, role: str) -> None:
        """Put `role`'s LoRA weights in the slot, in place, and stash the previous role's."""
        if self._key(role) == self._key(self.active_role):
            self.active_role = role
            return
        incoming = self._stash.pop(role)
        self._stash[self.active_role] = self._copy_of_slot()
        for name, param in self._slot.items():
            param.copy_(incoming[name])
        self.active_role = role

    @contextmanager
    def active(self, role: str) -> Iterator[RoleModel]:
        """`with model.active("solver"): ...` runs the block as that role, then restores the previous one.
        `active("base")` runs it as the base model alone: PEFT's `disable_adapter` switches the LoRA layers off."""
        if role == BASE:
            with self.model.disable_adapter():
                yield self
            return
        previous = self.active_role
        self.activate(role)
        try:
            yield self
        finally:
            self.activate(previous)

    def lora_weights(self, role: str) -> dict[str, torch.Tensor]:
        """A copy of `role`'s LoRA weights (for checks and tests)."""
        if self._key(role) == self._key(self.active_role):
            return self._copy_of_slot()
        return {n: t.clone() for n, t in self._stash[role].items()}

    def for_training(self, role: str):
        """The model to hand TRL's `GRPOTrainer`: `role` active, only the slot's LoRA weights trainable.

        With a KL term (beta > 0) TRL adds a frozen copy of the slot, the adapter "ref", as the reference: so
        each phase's reference is its own role's weights at the start of that phase. The previous phase's
        copy is dropped here first (TRL refuses to add a second "ref"), so one never leaks into another role.
        """
        if "ref" in getattr(self.model, "peft_config", {}):
            self.model.delete_adapter("ref")
        self.activate(role)
        for name, param in self.model.named_parameters():
            param.requires_grad_(name in self._slot)
        if self.backend == "unsloth":
            from unsloth import FastLanguageModel

            FastLanguageModel.for_training(self.model)
        self.model.train()
        return self.model

    # ---------------------------------------------------------------- generation

    def chat_prompt(self, messages: list[dict[str, str]]) -> str:
        """The text a model continues: a new assistant turn, or the last turn itself when it is the assistant's
        (an answer begun for the model, e.g. `prompts.THINK_PREFILL`)."""
        if messages[-1]["role"] == "assistant":
            return self.tokenizer.apply_chat_template(messages, tokenize=False, continue_final_message=True)
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def generate(
        self,
        role: str,
        prompts: list[list[dict[str, str]]],
        n: int = 1,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_new_tokens: int = 256,
        seed: int = 0,
    ) -> list[list[Generation]]:
        """`n` completions for each chat prompt, as `role`, with no gradients: `result[i][j]` is sample j of prompt i.

        Prompts are sorted by length and packed into batches of at most `max_batch_tokens` (rows × (prompt
        + new tokens)), left-padded, so K samples of many prompts take few `generate` calls. On the PEFT
        backend each prompt is read once and its `n` samples share that cache, and the turns that several
        prompts share (system prompt, worked exemplar) are read once per call (`shared_prefix_lengths`).
        `temperature=0` is greedy. A prompt whose last turn is the assistant's is continued, and its text
        leads each of its completions, so a completion is always the whole answer.
        """
        ids = [self.tokenizer(self.chat_prompt(m), add_special_tokens=False)["input_ids"] for m in prompts]
        reuse = self.config.prefix_cache and self.backend == "peft"
        prefix = shared_prefix_lengths(prompts, ids) if reuse else [0] * len(ids)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        results: list[list[Generation]] = [[] for _ in prompts]
        devices = list(range(torch.cuda.device_count()))
        prefilled: dict[tuple[int, ...], list] = {}  # a shared prefix's keys and values, read once per call
        # A private random stream: seeded here, and the caller's (e.g. TRL's) stream is left as it was.
        with torch.random.fork_rng(devices=devices), self.active(role), self._inference():
            torch.manual_seed(seed)
            for group in self._batches(order, ids, n, max_new_tokens):
                outputs = self._generate_batch([ids[i] for i in group], [prefix[i] for i in group], prefilled, n,
                                               temperature, top_p, max_new_tokens)  # fmt: skip
                for row, (text, used) in enumerate(outputs):
                    i = group[row // n]
                    results[i].append(Generation(begun(prompts[i]) + text, len(ids[i]), used))
        return results

    def _batches(self, order: list[int], ids: list[list[int]], n: int, max_new_tokens: int) -> Iterator[list[int]]:
        """Groups of prompts whose n samples each fit the token cap (a prompt that alone exceeds it goes alone)."""
        group: list[int] = []
        for i in order:  # sorted by length, so the prompt added last is the longest
            if group and (len(group) + 1) * n * (len(ids[i]) + max_new_tokens) > self.config.max_batch_tokens:
                yield group
                group = []
            group.append(i)
        if group:
            yield group

    @contextmanager
    def _inference(self) -> Iterator[None]:
        was_training = self.model.training
        self.model.eval()
        if self.backend == "unsloth":
            from unsloth import FastLanguageModel

            FastLanguageModel.for_inference(self.model)
        kept: list[tuple[torch.nn.Parameter, torch.Tensor]] = []  # each swapped parameter and its own tensor
        base = self.model.get_base_model()
        attention = base.config._attn_implementation  # training's kernel, put back after
        try:
            if self.backend == "peft":
                self._slot_in_base_dtype(kept)
                base.set_attn_implementation(generation_attention(base.device.type, base.dtype, attention))
            with torch.inference_mode():
                yield
        finally:
            for param, weights in kept:  # the tensors themselves: put back exactly
                param.data = weights
            if base.config._attn_implementation != attention:
                base.set_attn_implementation(attention)
            if self.backend == "unsloth":
                from unsloth import FastLanguageModel

                FastLanguageModel.for_training(self.model)
            self.model.train(was_training)

    def _slot_in_base_dtype(self, kept: list) -> None:
        """For generation only: the slot's LoRA weights (float32, for training) as a copy in the base's dtype, so
        that each LoRA layer computes in the base's dtype instead of casting its input up and its output back
        (measured on the 0.5B model in bfloat16 on CPU: generation about 12% faster, the same greedy answers).
        Each weight's float32 tensor goes to `kept` as it is swapped, so `_inference` puts every one back
        unchanged, also after a failure part-way."""
        dtype = self.model.get_base_model().dtype
        if dtype == torch.float32:  # a float32 base: the LoRA weights are already in its dtype
            return
        for param in self._slot.values():
            if param.dtype != dtype:
                kept.append((param, param.data))
                param.data = param.data.to(dtype)

    def _generate_batch(self, batch: list[list[int]], prefix: list[int], prefilled: dict, n: int, temperature: float,
                        top_p: float, max_new_tokens: int):  # fmt: skip
        """`n` samples of each prompt in `batch`, row-major: (text, completion tokens) per row.

        Each row is laid out as [pads][shared prefix][pads][rest of the prompt], so every prefix ends at one
        column and every prompt at the right edge; positions count only real tokens, so this computes what
        plain left padding does. On the PEFT backend the prefixes' keys and values come from `prefilled`
        (read once per call), the rest of each prompt but its last token is read once, and the `n` samples
        continue from copies of that cache.
        """
        pad = self.tokenizer.pad_token_id
        width_prefix = max(prefix)
        width_rest = max(len(x) - p for x, p in zip(batch, prefix))
        rows, mask = [], []
        for x, p in zip(batch, prefix):
            rest = len(x) - p
            rows.append([pad] * (width_prefix - p) + x[:p] + [pad] * (width_rest - rest) + x[p:])
            mask.append([0] * (width_prefix - p) + [1] * p + [0] * (width_rest - rest) + [1] * rest)
        input_ids = torch.tensor(rows, device=self.model.device)
        attention = torch.tensor(mask, device=self.model.device)
        width = width_prefix + width_rest
        cached = {}
        if self.backend == "peft":
            cache = self._prefix_cache(batch, prefix, prefilled, width_prefix)
            if width - 1 > width_prefix:
                positions = (attention.cumsum(-1) - 1).clamp(min=0)
                self.model(input_ids=input_ids[:, width_prefix:-1], attention_mask=attention[:, :-1],
                           position_ids=positions[:, width_prefix:-1], past_key_values=cache, use_cache=True,
                           logits_to_keep=1)  # only the cache is needed  # fmt: skip
            cache.batch_repeat_interleave(n)
            cached = {"past_key_values": cache}
        sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p} if temperature > 0 else {"do_sample": False}
        out = self.model.generate(
            input_ids=input_ids.repeat_interleave(n, dim=0),
            attention_mask=attention.repeat_interleave(n, dim=0),
            max_new_tokens=max_new_tokens,
            pad_token_id=pad,
            eos_token_id=self.stop_ids,
            **cached,
            **sampling,
        )
        new = out[:, width:]
        stops = torch.isin(new, torch.tensor(self.stop_ids, device=new.device))
        seen = stops.int().cumsum(dim=1)
        used = ((seen == 0) | ((seen == 1) & stops)).sum(dim=1)  # tokens up to and including the first stop
        texts = self.tokenizer.batch_decode(new, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        return list(zip(texts, used.tolist()))

    def _prefix_cache(self, batch: list[list[int]], prefix: list[int], prefilled: dict, width: int):
        """A cache holding each row's shared prefix, left-padded with zeros (masked) to `width` columns.

        A prefix not yet in `prefilled` is read once, alone, and kept there for the rest of the call.
        """
        from transformers import DynamicCache

        if width == 0:
            return DynamicCache()
        rows = []
        for x, p in zip(batch, prefix):
            key = tuple(x[:p])
            if key and key not in prefilled:
                cache = DynamicCache()
                self.model(input_ids=torch.tensor([x[:p]], device=self.model.device), past_key_values=cache,
                           use_cache=True, logits_to_keep=1)  # fmt: skip
                prefilled[key] = [(layer.keys, layer.values) for layer in cache.layers]
            rows.append((prefilled.get(key), width - p))
        like = next(kv for kv, _ in rows if kv is not None)
        layers = []
        for layer, (k0, v0) in enumerate(like):
            keys, values = [], []
            for kv, missing in rows:
                k, v = kv[layer] if kv is not None else (k0[:, :, :0], v0[:, :, :0])
                keys.append(torch.nn.functional.pad(k, (0, 0, missing, 0)))
                values.append(torch.nn.functional.pad(v, (0, 0, missing, 0)))
            layers.append((torch.cat(keys), torch.cat(values)))
        return DynamicCache(layers)

    # ---------------------------------------------------------------- saving and export

    def save_role(self, role: str, folder: str | Path) -> Path:
        """Write `role` as a standard PEFT adapter folder (safetensors), loadable by `PeftModel.from_pretrained`."""
        with self.active(role):
            self.model.save_pretrained(str(folder), safe_serialization=True, selected_adapters=["default"])
        return Path(folder)

    def load_role(self, role: str, folder: str | Path) -> None:
        """Read a role's LoRA weights back from an adapter folder written by `save_role`."""
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        path = Path(folder) / "adapter_model.safetensors"
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: {folder} is not an adapter folder written by save_role")
        misfit = ValueError(f"{folder} does not fit this model's LoRA shape (r, target modules); was it saved from another config?")
        with self.active(role):
            try:
                result = set_peft_model_state_dict(self.model, load_file(str(path), device=str(self.model.device)))
            except RuntimeError as e:  # size mismatch
                raise misfit from e
            if result.unexpected_keys or any("lora_" in k for k in result.missing_keys):
                raise misfit

    def save_merged(self, role: str, folder: str | Path) -> Path:
        """Export `role` merged into the base as a plain model folder.

        Each LoRA layer's merged weight, W + (alpha/r)·BA, is computed into a new tensor (the delta in the
        LoRA weights' float32, rounded once to the base's dtype); every other tensor is shared, not copied.
        The base itself is never touched: an in-place merge and unmerge would round a bfloat16 base. The
        tensors go to a fresh model skeleton and are saved, which also works for a GGUF-loaded base (it
        refuses `save_pretrained` itself).
        """
        if self.config.load_in_4bit:
            raise ValueError("merging into a 4-bit base is lossy; load the base with load_in_4bit: false to export")
        from peft.tuners.lora import LoraLayer
        from transformers import AutoModelForCausalLM

        base = self.model.get_base_model()
        with self.active(role), torch.no_grad():
            state = {
                name.replace(".base_layer.", "."): tensor
                for name, tensor in base.state_dict().items()
                if "lora_" not in name
            }
            for name, module in base.named_modules():
                if isinstance(module, LoraLayer):
                    weight = module.get_base_layer().weight
                    delta = module.get_delta_weight("default")
                    state[f"{name}.weight"] = (weight.float() + delta.float()).to(weight.dtype)
            with torch.device("meta"):
                plain = AutoModelForCausalLM.from_config(base.config, dtype=base.dtype)
            plain.load_state_dict(state, assign=True, strict=False)
            plain.tie_weights()
            plain.save_pretrained(str(folder), safe_serialization=True)
            self.tokenizer.save_pretrained(str(folder))
        return Path(folder)


def without_template_bos(text: str, tokenizer) -> str:
    """A rendered prompt as a trainer that tokenizes it with the tokenizer's special tokens must get it.

    The kit tokenizes rendered chats with `add_special_tokens=False`: the template writes every special token.
    TRL tokenizes text prompts with the defaults, so a tokenizer that adds a BOS itself (Llama 3's) would read
    the template's BOS and its own; the template's is dropped then. Qwen's and SmolLM2's add none: unchanged.
    """
    bos, added = tokenizer.bos_token, tokenizer("", add_special_tokens=True)["input_ids"]
    if bos and added[:1] == [tokenizer.bos_token_id] and text.startswith(bos):
        return text[len(bos):]
    return text


def begun(messages: list[dict[str, str]]) -> str:
    """The answer text a prompt begins for the model: its last turn when that is the assistant's, else ""."""
    return messages[-1]["content"] if messages[-1]["role"] == "assistant" else ""


def shared_prefix_lengths(prompts: list[list[dict[str, str]]], ids: list[list[int]]) -> list[int]:
    """For each prompt, how many of its leading tokens it shares with the other prompts that have the same
    turns before the request, the last user turn (0 when no other prompt does). At least one token of each
    prompt is left out.

    >>> system = {"role": "system", "content": "s"}
    >>> shared_prefix_lengths([[system, {"role": "user", "content": "a"}], [system, {"role": "user", "content": "b"}],
    ...                        [{"role": "user", "content": "c"}]], [[1, 2, 3, 4], [1, 2, 5], [1, 6]])
    [2, 2, 0]
    """
    groups: dict[str, list[int]] = {}
    for i, messages in enumerate(prompts):
        request = max((k for k, m in enumerate(messages) if m["role"] == "user"), default=len(messages) - 1)
        groups.setdefault(json.dumps(messages[:request]), []).append(i)
    lengths = [0] * len(ids)
    for members in groups.values():
        if len(members) < 2:
            continue
        first = ids[members[0]]
        shared = min(len(ids[i]) for i in members) - 1
        for i in members[1:]:
            shared = next((k for k, (a, b) in enumerate(zip(first[:shared], ids[i])) if a != b), shared)
        for i in members:
            lengths[i] = shared
    return lengths


def _stop_ids(tokenizer) -> list[int]:
    """Token ids that end a turn: the chat formats' end tokens present in the vocabulary, and eos."""
    vocab = tokenizer.get_vocab()  # builds a dict of the whole vocabulary: do it once, not per batch
    stops = {vocab[t] for t in ("<|im_end|>", "<|endoftext|>", "<|eot_id|>") if t in vocab}
    if tokenizer.eos_token_id is not None:
        stops.add(tokenizer.eos_token_id)
    return sorted(stops)


def _lora_config(config: ModelConfig):
    from peft import LoraConfig

    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.target_modules,
        task_type="CAUSAL_LM",
    )


def _load_peft(source: Source, config: ModelConfig):
    """transformers + PEFT: fp32 on CPU, bf16/fp16 on a GPU, optionally a bitsandbytes 4-bit base."""
    from peft import get_peft_model, prepare_model_for_kbit_training

    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = load_tokenizer(source, config.trust_remote_code)
    quantization = None
    if config.load_in_4bit:
        from transformers import BitsAndBytesConfig

        quantization = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=config.torch_dtype()
        )
    base = load_base_model(source, tokenizer, config.torch_dtype(), device, config.trust_remote_code, quantization)
    base.get_output_embeddings().register_forward_pre_hook(contiguous_input)
    if config.load_in_4bit:
        base = prepare_model_for_kbit_training(base, use_gradient_checkpointing=False)
    torch.manual_seed(config.seed)
    return get_peft_model(base, _lora_config(config)), tokenizer


def contiguous_input(module, args: tuple) -> tuple:
    """A forward pre-hook for the lm_head: its input as a contiguous tensor.

    transformers hands the lm_head a slice of the hidden states (`logits_to_keep`: the last position in each
    prefill, the completion's positions in a GRPO step), and torch on a CPU multiplies such a non-contiguous
    bfloat16 input through `bmm`, copying the whole lm_head weight once per row (pytorch/pytorch#151934).
    Measured on the 0.5B model (2 cores): 5.4 s for the last position of 8 rows, 0.03 s from a contiguous copy.
    """
    return (args[0].contiguous(), *args[1:])


def _load_unsloth(source: Source, config: ModelConfig):
    """Unsloth: `FastLanguageModel` with its single "default" LoRA adapter and its fast kernels."""
    if source.gguf_file:
        raise ConfigError(
            f"model.source: Unsloth cannot read a GGUF file ({source.name}); set backend: peft, "
            "or name the model's Hub id or folder"
        )
    import unsloth  # noqa: F401  (must come before transformers/trl are used: it patches them)
    from unsloth import FastLanguageModel

    model, tokenizer = FastLanguageModel.from_pretrained(
        model_name=source.path,
        max_seq_length=config.max_seq_length,
        dtype=None if config.dtype == "auto" else config.torch_dtype(),
        load_in_4bit=config.load_in_4bit,
        max_lora_rank=config.lora_r,
        fast_inference=config.fast_inference,
        trust_remote_code=config.trust_remote_code,
        # this process's GPU (distributed.join_launch pinned it); Unsloth's default spreads over all GPUs from 0
        **({"device_map": {"": torch.cuda.current_device()}} if torch.cuda.is_available() else {}),
    )
    model = FastLanguageModel.get_peft_model(
        model,
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.target_modules,
        use_gradient_checkpointing="unsloth",
        random_state=config.seed,
    )
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer
