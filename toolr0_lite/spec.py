"""The task-spec distribution (docs/METHOD.md §2): Tool-R0's only prior, and the user's main knob.

Each Generator prompt is conditioned on a freshly sampled spec: a domain, single- or multi-turn context,
how many gold calls, how many tools on the menu. Menus larger than the number of calls hold distractors.
Beyond the paper, a share of specs asks for a *no-call* task (gold list empty), so the Solver also learns
when not to call a tool.

The defaults below are the paper's; `SpecConfig` loads from and dumps to YAML so a user can edit them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import yaml

from toolr0_lite.config import ConfigError, from_dict, load_yaml, setting, to_dict
from toolr0_lite.records import Spec

PAPER_DOMAINS = [
    "finance", "healthcare", "productivity", "retail_ecommerce", "scheduling", "database",
    "cloud_infrastructure", "system", "programming", "geolocation", "logistics", "communication", "iot",
    "cybersecurity", "insurance", "legal", "news", "weather", "sports", "entertainment", "education",
    "real_estate", "food_ordering", "translation", "utilities", "government", "memory_management",
    "web_search", "social_media", "math", "vehicle_control", "travel",
]  # fmt: skip
CONTEXT_TYPES = ("single_turn", "multi_turn")


@dataclass
class SpecConfig:
    """The spec distribution. Weights need not sum to 1; they are normalised when sampling."""

    domains: list[str] = setting(list(PAPER_DOMAINS), "the domains a spec is drawn from (paper: 32)")
    domain_weights: list[float] = setting([], "one weight per domain, same order; empty means uniform")
    context_weights: dict[str, float] = setting({"single_turn": 0.9, "multi_turn": 0.1}, "single_turn / multi_turn")
    num_calls_weights: dict[int, float] = setting({1: 0.8, 2: 0.2}, "gold calls of a single-turn task (multi-turn: 1)")
    single_call_menu_weights: dict[int, float] = setting(
        {2: 0.4 / 3, 3: 0.4 / 3, 4: 0.4 / 3, 5: 0.15, 6: 0.15, 7: 0.15, 8: 0.15},
        "menu size for one call: 2-4 uniform with total 0.4, or 5-8 uniform with total 0.6",
    )
    multi_call_menu_weights: dict[int, float] = setting({3: 0.3, 4: 0.4, 5: 0.3}, "menu size for more than one call")
    no_call_share: float = setting(0.1, "share of specs whose correct answer is no call at all (0: the paper's)")

    def __post_init__(self) -> None:
        if not self.domains:
            raise ConfigError("spec.domains: the list is empty; name at least one domain, e.g. [weather]")
        if len(set(self.domains)) != len(self.domains):
            raise ConfigError("spec.domains: a domain is listed twice; list each once and use domain_weights")
        if self.domain_weights and len(self.domain_weights) != len(self.domains):
            raise ConfigError(
                f"spec.domain_weights: {len(self.domain_weights)} weights for {len(self.domains)} domains; "
                "give one weight per domain, or an empty list for uniform"
            )
        unknown = set(self.context_weights) - set(CONTEXT_TYPES)
        if unknown:
            raise ConfigError(f"spec.context_weights: unknown context type(s) {sorted(unknown)}; use {CONTEXT_TYPES}")
        for name in ("domain_weights", "context_weights", "num_calls_weights",
                     "single_call_menu_weights", "multi_call_menu_weights"):  # fmt: skip
            _check_weights(name, getattr(self, name))
        if min(self.num_calls_weights) < 1:
            raise ConfigError("spec.num_calls_weights: call counts must be >= 1; ask for no-call tasks with no_call_share")
        if min(self.single_call_menu_weights) < 1:
            raise ConfigError("spec.single_call_menu_weights: a menu needs at least 1 tool; use sizes >= 1")
        most_calls = max(self.num_calls_weights)
        if most_calls > 1 and min(self.multi_call_menu_weights) < most_calls:
            raise ConfigError(
                f"spec.multi_call_menu_weights: menu size {min(self.multi_call_menu_weights)} is smaller than "
                f"{most_calls} calls (num_calls_weights); use menu sizes >= {most_calls}"
            )
        if not 0.0 <= self.no_call_share <= 1.0:
            raise ConfigError(f"spec.no_call_share: {self.no_call_share} is not a share; use a value in [0, 1]")

    @classmethod
    def from_yaml(cls, path: str | Path) -> SpecConfig:
        return from_dict(cls, load_yaml(path), "spec")

    def to_yaml(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(to_dict(self), sort_keys=False), encoding="utf-8")


def _check_weights(name: str, weights: list[float] | dict) -> None:
    values = list(weights.values()) if isinstance(weights, dict) else list(weights)
    if name == "domain_weights" and not values:
        return
    if not values:
        raise ConfigError(f"spec.{name}: no entries; give at least one positive weight")
    if any(v < 0 for v in values):
        raise ConfigError(f"spec.{name}: negative weight; weights must be >= 0")
    if sum(values) <= 0:
        raise ConfigError(f"spec.{name}: all weights are zero; give at least one a positive weight")


def _choose(rng: random.Random, weights: dict) -> object:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def sample_spec(config: SpecConfig, rng: random.Random) -> Spec:
    """Draw one spec. Pass a seeded `random.Random` for reproducible runs.

    >>> sample_spec(SpecConfig(domains=["weather"], no_call_share=0.0), random.Random(0)).domain
    'weather'
    """
    domain = rng.choices(config.domains, weights=config.domain_weights or None)[0]
    context = _choose(rng, config.context_weights)
    if rng.random() < config.no_call_share:
        return Spec(domain, context, 0, _choose(rng, config.single_call_menu_weights))
    num_calls = 1 if context == "multi_turn" else _choose(rng, config.num_calls_weights)
    menu = config.multi_call_menu_weights if num_calls > 1 else config.single_call_menu_weights
    return Spec(domain, context, num_calls, _choose(rng, menu))


def sample_specs(config: SpecConfig, n: int, seed: int) -> list[Spec]:
    """`n` specs from one seed: the same seed always gives the same list."""
    rng = random.Random(seed)
    return [sample_spec(config, rng) for _ in range(n)]
