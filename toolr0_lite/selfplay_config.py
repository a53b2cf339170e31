"""Configuration of a self-play run: one dataclass per part, YAML presets, validation before any model loads.

A preset (recipes/configs/NAME.yaml) and a user's YAML file list only what differs from the defaults below.
`load_config` merges them, builds the dataclasses (unknown keys and wrong types fail with the field's name),
runs each part's range checks, then checks the backend and the model source: all before loading a model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolr0_lite.config import ConfigError, from_dict, load_yaml
from toolr0_lite.models import ModelConfig
from toolr0_lite.rewards import GeneratorRewardConfig
from toolr0_lite.spec import SpecConfig

# The preset YAMLs: recipes/configs/ in a clone (and an editable install); a wheel ships the same files
# as toolr0_lite/presets/ (pyproject.toml maps one onto the other).
_HERE = Path(__file__).resolve().parent
PRESETS = next((d for d in (_HERE.parent / "recipes" / "configs", _HERE / "presets") if d.is_dir()), _HERE / "presets")

@dataclass
class PhaseConfig:
    """One role's GRPO phase (handed to TRL's `GRPOConfig`)."""

    steps: int = 10
    prompts_per_step: int = 2  # a step's batch is prompts_per_step × group_size completions
    group_size: int = 4  # G: completions per prompt, compared with each other for the advantage
    max_completion_length: int = 256
    learning_rate: float = 2e-5  # LoRA needs far more than the paper's full-fine-tuning 1e-6
    temperature: float = 1.0
    beta: float = 0.0  # KL weight; the paper uses 0
    epsilon: float = 0.2  # PPO-style clipping
    gradient_checkpointing: bool = False
    # TRL generates the rollouts of this many steps in one batched call, then takes the steps on slices of it.
    # GPU decoding is launch-bound (a step costs about the same at batch 8 or 64), so S steps' rollouts cost
    # about one step's; steps after the first in a block are slightly off-policy, which GRPO's ratio clips.
    steps_per_generation: int = 1


@dataclass
class ProbeConfig:
    """How the frozen Solver is asked about a Generator completion (r_diff and r_sem)."""

    samples: int = 8  # K answers per task for p̂
    temperature: float = 0.7
    max_new_tokens: int = 256
    judge: bool = True  # r_sem from the Solver as judge; off leaves r_sem at 0
    judge_max_new_tokens: int = 16


@dataclass
class SynthesisConfig:
    """From the frozen Generator's candidates to the Solver's training set (SPEC.md §6)."""

    candidates: int = 64
    tasks: int = 16
    batch_size: int = 16  # candidates per generate call (and per resumable unit)
    temperature: float = 0.7
    max_new_tokens: int = 384
    agreement_samples: int = 10
    agreement_min: int = 2
    agreement_temperature: float = 0.3  # "near-greedy"
    mix: tuple[float, float, float] = (0.2, 0.5, 0.3)  # easy / medium / hard
    heldout: int = 16  # iteration 0 sets aside up to this many sound tasks (at most half) as the held-out set
    min_tasks: int = 1  # fewer than this is "too few"
    on_too_few: str = "skip"  # "skip" the Solver phase, "stop" the run, or top up with the "exemplars"


@dataclass
class SelfPlayConfig:
    """A whole run. Presets in recipes/configs/ hold only what differs from these defaults."""

    model: ModelConfig = field(default_factory=ModelConfig)
    spec: SpecConfig = field(default_factory=SpecConfig)
    rewards: GeneratorRewardConfig = field(default_factory=GeneratorRewardConfig)
    generator: PhaseConfig = field(default_factory=PhaseConfig)
    solver: PhaseConfig = field(default_factory=PhaseConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    synthesis: SynthesisConfig = field(default_factory=SynthesisConfig)
    iterations: int = 3
    exemplars: bool = True  # a worked example in the Generator's and the Solver's prompts (small models need it)
    frozen_generator: bool = False  # ablation: never train the Generator
    seed: int = 0
    report_to: str = "none"  # passed to TRL: "none", "tensorboard", "wandb"
    out: str = "runs/toolr0"

    def __post_init__(self) -> None:
        if self.iterations < 1:
            raise ConfigError("iterations: must be >= 1")
        for name in ("generator", "solver"):
            _check_phase(name, getattr(self, name))
        p, s = self.probe, self.synthesis
        if p.samples < 1 or p.max_new_tokens < 1 or p.judge_max_new_tokens < 1:
            raise ConfigError("probe: samples and token limits must be >= 1 (the paper uses samples: 8)")
        if p.temperature <= 0:
            raise ConfigError("probe.temperature: must be > 0 (K answers at temperature 0 would all agree)")
        if s.heldout < 0:
            raise ConfigError("synthesis.heldout: must be >= 0 (0 keeps no held-out tasks)")
        for name in ("candidates", "tasks", "batch_size", "max_new_tokens", "agreement_samples"):
            if getattr(s, name) < 1:
                raise ConfigError(f"synthesis.{name}: must be >= 1")
        if s.tasks > s.candidates:
            raise ConfigError(f"synthesis.tasks: {s.tasks} tasks cannot come from {s.candidates} candidates; raise candidates")
        if not 0 <= s.agreement_min <= s.agreement_samples:
            raise ConfigError("synthesis.agreement_min: must be between 0 and agreement_samples")
        if min(s.mix) < 0 or sum(s.mix) <= 0:
            raise ConfigError("synthesis.mix: give three shares >= 0 (easy, medium, hard), e.g. [0.2, 0.5, 0.3]")
        if s.on_too_few not in ("skip", "stop", "exemplars"):
            raise ConfigError(f"synthesis.on_too_few: {s.on_too_few!r}; use skip, stop or exemplars")
        if self.report_to not in ("none", "tensorboard", "wandb"):
            raise ConfigError(f"report_to: {self.report_to!r}; use none, tensorboard or wandb")


def _check_phase(name: str, phase: PhaseConfig) -> None:
    for key in ("steps", "prompts_per_step", "max_completion_length", "steps_per_generation"):
        if getattr(phase, key) < 1:
            raise ConfigError(f"{name}.{key}: must be >= 1")
    if phase.group_size < 2:
        raise ConfigError(f"{name}.group_size: GRPO compares completions of one prompt; use >= 2 (paper: 4)")
    if phase.learning_rate <= 0 or phase.temperature <= 0:
        raise ConfigError(f"{name}: learning_rate and temperature must be > 0")
    if phase.beta < 0 or phase.epsilon <= 0:
        raise ConfigError(f"{name}: beta must be >= 0 and epsilon > 0")


def load_config(preset: str | None = None, path: str | Path | None = None, **overrides: Any) -> SelfPlayConfig:
    """A preset by name (recipes/configs/NAME.yaml) and/or a YAML file, then top-level overrides, validated."""
    data: dict = {}
    if preset is not None:
        file = PRESETS / f"{preset}.yaml"
        if not file.is_file():
            names = sorted(p.stem for p in PRESETS.glob("*.yaml"))
            raise ConfigError(f"preset {preset!r} does not exist; choose one of {names}")
        data = _merge(data, load_yaml(file) or {})
    if path is not None:
        data = _merge(data, load_yaml(path) or {})
    data = _merge(data, {k: v for k, v in overrides.items() if v is not None})
    config = from_dict(SelfPlayConfig, data, "")
    config.model.check()  # the backend and the model source, before anything loads
    if config.model.resolved_backend() == "unsloth":
        for name in ("generator", "solver"):
            if getattr(config, name).beta > 0:
                raise ConfigError(f"{name}.beta: a KL reference needs a second adapter, which the Unsloth backend does "
                                  "not hold; set model.backend: peft, or beta: 0")  # fmt: skip
    return config


def _merge(base: dict, extra: Any) -> dict:
    """Later settings win; a section (model:, spec:, ...) is merged key by key, a value inside it is replaced."""
    if not isinstance(extra, dict):
        raise ConfigError(f"config: expected a mapping of settings, got {type(extra).__name__}")
    merged = dict(base)
    for key, value in extra.items():
        both = isinstance(value, dict) and isinstance(base.get(key), dict)
        merged[key] = {**base[key], **value} if both else value
    return merged
