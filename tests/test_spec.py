"""The task-spec distribution: the paper's defaults, reproducibility, YAML round trip, validation."""

import random
from collections import Counter

import pytest

from toolr0_lite.config import ConfigError
from toolr0_lite.spec import PAPER_DOMAINS, SpecConfig, sample_spec, sample_specs


def test_defaults_are_the_papers():
    config = SpecConfig()
    assert len(config.domains) == 32 and len(set(PAPER_DOMAINS)) == 32
    assert sum(config.single_call_menu_weights.values()) == pytest.approx(1.0)
    assert config.no_call_share == 0.1


def test_sampling_follows_the_distribution():
    specs = sample_specs(SpecConfig(no_call_share=0.0), 20000, seed=1)
    context = Counter(s.context_type for s in specs)
    assert context["multi_turn"] / len(specs) == pytest.approx(0.1, abs=0.01)
    single = [s for s in specs if s.context_type == "single_turn"]
    assert sum(s.num_calls == 2 for s in single) / len(single) == pytest.approx(0.2, abs=0.015)
    assert all(s.num_calls == 1 for s in specs if s.context_type == "multi_turn")
    one_call = [s for s in specs if s.num_calls == 1]
    assert sum(s.tool_menu_size >= 5 for s in one_call) / len(one_call) == pytest.approx(0.6, abs=0.015)
    assert {s.tool_menu_size for s in specs if s.num_calls == 2} == {3, 4, 5}
    assert len({s.domain for s in specs}) == 32


def test_no_call_share():
    specs = sample_specs(SpecConfig(no_call_share=0.25), 8000, seed=2)
    assert sum(s.no_call for s in specs) / len(specs) == pytest.approx(0.25, abs=0.015)
    assert all(s.tool_menu_size >= 2 for s in specs if s.no_call)


def test_seeded_and_reproducible():
    assert sample_specs(SpecConfig(), 50, seed=7) == sample_specs(SpecConfig(), 50, seed=7)
    assert sample_specs(SpecConfig(), 50, seed=7) != sample_specs(SpecConfig(), 50, seed=8)


def test_domain_weights():
    config = SpecConfig(domains=["a", "b"], domain_weights=[0.0, 1.0])
    assert {sample_spec(config, random.Random(i)).domain for i in range(50)} == {"b"}


def test_yaml_round_trip(tmp_path):
    config = SpecConfig(domains=["weather", "travel"], domain_weights=[1.0, 3.0], no_call_share=0.2)
    config.to_yaml(tmp_path / "spec.yaml")
    assert SpecConfig.from_yaml(tmp_path / "spec.yaml") == config


def test_yaml_written_by_hand(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text("domains: [chess, cooking]\nnum_calls_weights: {1: 1, 3: 1}\nmulti_call_menu_weights: {3: 1, 6: 2}\n")
    config = SpecConfig.from_yaml(path)
    assert config.num_calls_weights == {1: 1.0, 3: 1.0}
    assert {s.num_calls for s in sample_specs(config, 200, 0) if not s.no_call} == {1, 3}


@pytest.mark.parametrize(
    "yaml_text, field",
    [
        ("domain: [a]", "unknown key"),
        ("domains: []", "spec.domains"),
        ("domains: weather", "spec.domains"),
        ("context_weights: {single_turn: -1, multi_turn: 1}", "spec.context_weights"),
        ("num_calls_weights: {1: 0, 2: 0}", "spec.num_calls_weights"),
        ("domains: [a, b]\ndomain_weights: [1]", "spec.domain_weights"),
        ("num_calls_weights: {1: 1, 4: 1}", "spec.multi_call_menu_weights"),
        ("no_call_share: 1.5", "spec.no_call_share"),
        ("no_call_share: lots", "spec.no_call_share"),
        ("context_weights: {group_chat: 1}", "spec.context_weights"),
    ],
)
def test_bad_spec_yaml_names_the_field(tmp_path, yaml_text, field):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError, match=field):
        SpecConfig.from_yaml(path)


def test_missing_or_broken_yaml(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        SpecConfig.from_yaml(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("domains: [a\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        SpecConfig.from_yaml(tmp_path / "bad.yaml")
