"""Configuration of a self-play run: one dataclass per part, YAML presets, validation before any model loads.

A preset (recipes/configs/NAME.yaml) and a user's YAML file list only what differs from the defaults below.
`load_config` merges them, builds the dataclasses (unknown keys and wrong types fail with the field's name),
runs each part's range checks, then checks the backend and the model source: all before loading a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolr0_lite.config import ConfigError, from_dict, load_yaml, parse_sets, setting, to_dict
from toolr0_lite.models import ModelConfig
from toolr0_lite.prompts import EXAMPLE_LAST
from toolr0_lite.rewards import GeneratorRewardConfig
from toolr0_lite.spec import SpecConfig

# The preset YAMLs: recipes/configs/ in a clone (and an editable install); a wheel ships the same files
# as toolr0_lite/presets/ (pyproject.toml maps one onto the other).
_HERE = Path(__file__).resolve().parent
PRESETS = next((d for d in (_HERE.parent / "recipes" / "configs", _HERE / "presets") if d.is_dir()), _HERE / "presets")


@dataclass
class PhaseConfig:
    """One role's GRPO phase (handed to TRL's `GRPOConfig`)."""

    steps: int = setting(10, "GRPO steps in the phase (paper: 50)")
    prompts_per_step: int = setting(2, "prompts per step; a step's batch is prompts_per_step × group_size completions")
    group_size: int = setting(4, "G: completions per prompt, compared with each other for the advantage (paper: 4)")
    max_completion_length: int = setting(256, "new tokens per completion at most (paper: 2048); TRL logs the clipped share")
    learning_rate: float = setting(2e-5, "LoRA needs far more than the paper's full-fine-tuning 1e-6")
    temperature: float = setting(1.0, "sampling temperature of the rollouts (paper: 1.0)")
    beta: float = setting(0.0, "KL weight to the role's weights at the phase start (paper: 0); PEFT backend only")
    epsilon: float = setting(0.2, "PPO-style clipping of the probability ratio")
    gradient_checkpointing: bool = setting(False, "recompute activations in the backward pass: less memory, more time")
    # GPU decoding is launch-bound (a step costs about the same at batch 8 or 64), so S steps' rollouts cost
    # about one step's; steps after the first in a block are slightly off-policy, which GRPO's ratio clips.
    steps_per_generation: int = setting(1, "TRL rolls out this many steps' completions in one batched call")
    gradient_accumulation_steps: int = setting(1, "each process takes its share of a step's batch in this many passes: "
                                                  "the same step in less memory (TRL's gradient accumulation)")

    def __post_init__(self) -> None:
        for key in ("steps", "prompts_per_step", "max_completion_length", "steps_per_generation",
                    "gradient_accumulation_steps"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key}: must be >= 1")
        if self.group_size < 2:
            raise ConfigError("group_size: GRPO compares completions of one prompt; use >= 2 (paper: 4)")
        if self.learning_rate <= 0 or self.temperature <= 0:
            raise ConfigError("learning_rate and temperature: must be > 0")
        if self.beta < 0 or self.epsilon <= 0:
            raise ConfigError("beta must be >= 0 and epsilon > 0")


@dataclass
class ProbeConfig:
    """How the frozen Solver is asked about a Generator completion (r_diff and r_sem)."""

    samples: int = setting(8, "K: the frozen Solver's answers per task, for p̂ (paper: 8)")
    temperature: float = setting(0.7, "sampling temperature of the K answers (paper: 0.7)")
    max_new_tokens: int = setting(256, "new tokens per answer at most")
    judge: bool = setting(True, "r_sem from the Solver as judge; false leaves r_sem at 0")
    judge_max_new_tokens: int = setting(16, "new tokens of the judge's rating at most")

    def __post_init__(self) -> None:
        if self.samples < 1 or self.max_new_tokens < 1 or self.judge_max_new_tokens < 1:
            raise ConfigError("samples and token limits must be >= 1 (the paper uses samples: 8)")
        if self.temperature <= 0:
            raise ConfigError("temperature: must be > 0 (K answers at temperature 0 would all agree)")


@dataclass
class SynthesisConfig:
    """From the frozen Generator's candidates to the Solver's training set (docs/METHOD.md §5)."""

    candidates: int = setting(64, "tasks the frozen Generator writes per iteration (paper: 10,000)")
    tasks: int = setting(16, "tasks the Solver trains on, chosen by the curriculum (paper: 2,000)")
    batch_size: int = setting(16, "candidates per generate call, and per resumable unit")
    temperature: float = setting(0.7, "sampling temperature of the candidates (paper: 0.7)")
    max_new_tokens: int = setting(384, "new tokens per candidate at most; a cut-off task is rejected as missing_blocks")
    require_grounded: bool = setting(False, "drop tasks whose gold values the question never names (kit; paper: kept)")
    agreement_samples: int = setting(10, "the frozen Solver's answers per sound task in the agreement check (paper: 10)")
    agreement_min: int = setting(2, "answers that must name the gold tools in order to keep a task (paper: 2)")
    agreement_temperature: float = setting(0.3, "'near-greedy' sampling of the agreement answers")
    agreement_by: str = setting("solver", "who answers in the agreement check: the frozen 'solver' (paper) or the "
                                "'base' model without LoRA weights, a judge training does not move (kit: a Solver "
                                "trained to stop declining fails every no-call task)")
    mix: tuple[float, float, float] = setting((0.2, 0.5, 0.3), "easy / medium / hard shares of the curriculum")
    no_call_twins: bool = setting(False, "after each selected call task, its no-call twin for the Solver: the request "
                                  "with the gold tools taken off the menu, gold [] (kit; paper: none)")
    heldout: int = setting(16, "sound tasks of iteration 0 set aside as the held-out set (at most half)")
    min_tasks: int = setting(1, "fewer selected tasks than this is 'too few'")
    on_too_few: str = setting("skip", "then: skip the Solver phase, stop the run, or top up with the exemplars")

    def __post_init__(self) -> None:
        if self.heldout < 0:
            raise ConfigError("heldout: must be >= 0 (0 keeps no held-out tasks)")
        for name in ("candidates", "tasks", "batch_size", "max_new_tokens", "agreement_samples"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be >= 1")
        if self.tasks > self.candidates:
            raise ConfigError(f"tasks: {self.tasks} tasks cannot come from {self.candidates} candidates; raise candidates")
        if not 0 <= self.agreement_min <= self.agreement_samples:
            raise ConfigError("agreement_min: must be between 0 and agreement_samples")
        if min(self.mix) < 0 or sum(self.mix) <= 0:
            raise ConfigError("mix: give three shares >= 0 (easy, medium, hard), e.g. [0.2, 0.5, 0.3]")
        if self.agreement_by not in ("solver", "base"):
            raise ConfigError(f"agreement_by: {self.agreement_by!r}; use solver (the paper's) or base")
        if self.on_too_few not in ("skip", "stop", "exemplars"):
            raise ConfigError(f"on_too_few: {self.on_too_few!r}; use skip, stop or exemplars")


@dataclass
class SelfPlayConfig:
    """A whole run. Presets in recipes/configs/ hold only what differs from these defaults."""

    model: ModelConfig = setting(ModelConfig, "the base model, the backend and the LoRA shape of both roles")
    spec: SpecConfig = setting(SpecConfig, "the task-spec distribution: the method's only prior")
    rewards: GeneratorRewardConfig = setting(GeneratorRewardConfig, "the Generator reward's knobs")
    generator: PhaseConfig = setting(PhaseConfig, "the Generator's GRPO phase")
    solver: PhaseConfig = setting(PhaseConfig, "the Solver's GRPO phase")
    probe: ProbeConfig = setting(ProbeConfig, "the frozen Solver's answers and judge score per Generator completion")
    synthesis: SynthesisConfig = setting(SynthesisConfig, "candidates → verify → dedup → agreement → curriculum")
    iterations: int = setting(3, "Generator phase, synthesis, Solver phase, this many times (paper: 3)")
    exemplars: bool = setting(True, "a worked example in both roles' prompts (small models need it)")
    solver_exemplar: bool = setting(True, "with exemplars on, the Solver's prompt shows one too (training, probes, "
                                    "evaluation); false: the Generator's only. A 0.5B Solver copied its example's "
                                    "kind, answering no call to call items only when shown a no-call example")
    solver_example_pair: bool = setting(False, "with the Solver's example on, show two: a call and a no-call example, "
                                        "each kind last every other prompt (kit). A lone example's kind is a cue "
                                        "a 0.5B Solver follows over its menu")
    solver_example_last: str = setting("alternate", "with solver_example_pair, which kind comes last: alternate (each "
                                       "every other prompt), call or no_call (always). Alternating, the kind shown "
                                       "last is a cue a 0.5B Solver follows, and CPU training strengthened it")
    solver_think_prefill: bool = setting(False, "begin every Solver answer with <think> (kit; paper: the model "
                                         "opens it). r_S pays accuracy only after a <think> block, and a 0.5B "
                                         "Solver without an example opened none in 48 answers")
    solver_twin_in_step: bool = setting(False, "with synthesis.no_call_twins: each twin in the same Solver GRPO step "
                                        "as its task, so one update sees two prompts that differ in the menu alone "
                                        "(kit); false: TRL's shuffled order, where a 0.5B Solver met the two a "
                                        "dozen steps apart")
    solver_twin_group: bool = setting(False, "with solver_twin_in_step: a task and its twin are one GRPO group, their "
                                      "2 × group_size answers ranked against one mean and spread, so declining pays "
                                      "where the menu lacks the tool and costs where it has it (kit; a task without "
                                      "a twin is a group of 2 × group_size answers alone). In separate groups a "
                                      "task all of whose answers declined got no gradient beside a twin that did; "
                                      "against per-prompt groups -0.041 and +0.130 on two CPU seeds: no effect (RESULTS.md)")
    frozen_generator: bool = setting(False, "ablation: never train the Generator")
    seed: int = setting(0, "seeds the specs, sampling and TRL")
    report_to: str = setting("none", "passed to TRL: none, tensorboard or wandb")
    verbose: bool = setting(False, "print TRL's whole log dictionary each step (metrics.jsonl always has it)")
    out: str = setting("runs/toolr0", "the run directory (an existing one is resumed; run a run's own config.yaml "
                       "and its folder is the run, from any working folder)")

    @property
    def solver_shows_example(self) -> bool:
        """Whether Solver prompts show a worked example."""
        return self.exemplars and self.solver_exemplar

    def __post_init__(self) -> None:
        if self.iterations < 1:
            raise ConfigError("iterations: must be >= 1")
        if self.report_to not in ("none", "tensorboard", "wandb"):
            raise ConfigError(f"report_to: {self.report_to!r}; use none, tensorboard or wandb")
        if self.solver_example_pair and not self.solver_shows_example:
            raise ConfigError("solver_example_pair: the Solver's prompt shows no example; set exemplars and "
                              "solver_exemplar true, or solver_example_pair false")  # fmt: skip
        if self.solver_example_last not in EXAMPLE_LAST:
            raise ConfigError(f"solver_example_last: {self.solver_example_last!r}; use {', '.join(EXAMPLE_LAST)}")
        if self.solver_example_last != "alternate" and not self.solver_example_pair:
            raise ConfigError("solver_example_last: it orders a pair of examples; set solver_example_pair true, or "
                              "leave solver_example_last at alternate")  # fmt: skip
        if self.solver_twin_in_step:
            self._check_twin_in_step()
        if self.solver_twin_group and not self.solver_twin_in_step:
            raise ConfigError("solver_twin_group: a task and its twin form a group only when they share a step; set "
                              "solver_twin_in_step true (with synthesis.no_call_twins), or solver_twin_group false")  # fmt: skip

    def _check_twin_in_step(self) -> None:
        if not self.synthesis.no_call_twins:
            raise ConfigError("solver_twin_in_step: there are no twins without synthesis.no_call_twins; set it true, "
                              "or solver_twin_in_step false")  # fmt: skip
        if self.solver.prompts_per_step % 2:
            raise ConfigError(f"solver_twin_in_step: a task and its twin are two prompts of one step, but "
                              f"solver.prompts_per_step is {self.solver.prompts_per_step}; make it even (e.g. 2)")  # fmt: skip
        if self.solver.steps_per_generation != 1:
            raise ConfigError("solver_twin_in_step: TRL shuffles one generation's completions across its "
                              "steps_per_generation steps, which would part a task from its twin; set "
                              "solver.steps_per_generation=1")  # fmt: skip


def load_config(preset: str | None = None, path: str | Path | None = None, sets: list[str] | None = None,
                **overrides: Any) -> SelfPlayConfig:  # fmt: skip
    """A preset by name (recipes/configs/NAME.yaml) and/or a YAML file, then command-line `sets`
    (``["generator.steps=10"]``), then top-level overrides; validated as one, before any model loads."""
    data: dict = {}
    if preset is not None:
        file = PRESETS / f"{preset}.yaml"
        if not file.is_file():
            names = sorted(p.stem for p in PRESETS.glob("*.yaml"))
            raise ConfigError(f"preset {preset!r} does not exist; choose one of {names}")
        data = merge_settings(data, load_yaml(file) or {})
    if path is not None:
        data = merge_settings(data, load_yaml(path) or {})
        if _is_run_config(path):  # a run's own config: the run is where the file is, from any working folder
            data["out"] = str(Path(path).resolve().parent)
    data = merge_settings(data, parse_sets(sets or []))
    data = merge_settings(data, {k: v for k, v in overrides.items() if v is not None})
    config = from_dict(SelfPlayConfig, data, "")
    config.model.check()  # the backend and the model source, before anything loads
    if config.model.resolved_backend() == "unsloth":
        for name in ("generator", "solver"):
            if getattr(config, name).beta > 0:
                raise ConfigError(f"{name}.beta: a KL reference needs a second adapter, which the Unsloth backend does "
                                  "not hold; set model.backend: peft, or beta: 0")  # fmt: skip
    return config


def _is_run_config(path: str | Path) -> bool:
    """Whether `path` is the config.yaml a run wrote into its own folder (beside its state.json)."""
    path = Path(path)
    return path.name == "config.yaml" and (path.parent / "state.json").is_file()


def merge_settings(base: dict, extra: Any) -> dict:
    """Settings of `extra` over those of `base`, as YAML layers combine: later settings win; a section (model:,
    spec:, ...) is merged key by key, a value inside it is replaced."""
    if not isinstance(extra, dict):
        raise ConfigError(f"config: expected a mapping of settings, got {type(extra).__name__}")
    merged = dict(base)
    for key, value in extra.items():
        both = isinstance(value, dict) and isinstance(base.get(key), dict)
        merged[key] = {**base[key], **value} if both else value
    return merged


def check_processes(config: SelfPlayConfig, processes: int) -> None:
    """A GRPO step's batch (prompts_per_step × group_size completions) is split across the processes, and each
    share into gradient_accumulation_steps passes: it must divide evenly; checked before any model loads."""
    for name in ("generator", "solver"):
        phase = getattr(config, name)
        batch, parts = phase.prompts_per_step * phase.group_size, processes * phase.gradient_accumulation_steps
        if batch % parts:
            raise ConfigError(f"{name}.prompts_per_step × {name}.group_size = {batch} completions a step cannot be split "
                              f"into {processes} processes × {phase.gradient_accumulation_steps} accumulation passes; make "
                              f"it a multiple of {parts} (e.g. {name}.prompts_per_step={parts}), or change the number of "
                              f"processes or {name}.gradient_accumulation_steps")  # fmt: skip


def changed_settings(old: dict, new: dict, defaults: dict | None = None, prefix: str = "") -> list[str]:
    """Dotted names of the settings that differ between two config dicts. A setting the old config does not
    have (one added to the kit since that run started) counts as unchanged while the new one is at its default."""
    defaults = to_dict(SelfPlayConfig()) if defaults is None else defaults
    changed = []
    for key in dict.fromkeys([*old, *new]):
        a, b, default = old.get(key), new.get(key), defaults.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changed += changed_settings(a, b, default if isinstance(default, dict) else {}, f"{prefix}{key}.")
        elif a != b and not (key not in old and b == default):
            changed.append(f"{prefix}{key}")
    return changed
