"""Every setting from the command line (--set) and `toolr0-lite config`: parsed and validated as YAML is."""

import dataclasses

import pytest
import yaml

from toolr0_lite.cli import main as cli
from toolr0_lite.config import ConfigError, parse_sets, to_dict
from toolr0_lite.selfplay_config import SelfPlayConfig, load_config


def test_set_changes_exactly_what_it_names():
    config = load_config("tiny", sets=["generator.steps=7", "model.source=smollm2-135m", "spec.no_call_share=0.5",
                                       "synthesis.mix=[0.1, 0.1, 0.8]", "exemplars=false"])  # fmt: skip
    base = load_config("tiny")
    assert (config.generator.steps, config.spec.no_call_share, config.synthesis.mix, config.exemplars) == (7, 0.5, (0.1, 0.1, 0.8), False)
    assert config.model.source == "smollm2-135m" and config.model.lora_r == base.model.lora_r  # the rest of the section stays
    assert config.solver == base.solver


@pytest.mark.parametrize("pair, message", [
    ("generator.stepz=3", "generator: unknown key.*stepz; valid keys are steps"),
    ("generator.steps=many", "generator.steps: expected int, got 'many'"),
    ("generator.steps=0", "generator.steps: must be >= 1"),
    ("probe.temperature=0", "probe.temperature: must be > 0"),
    ("iterations", "write KEY=VALUE"),
    ("=3", "write KEY=VALUE"),
    ("model.source=[unclosed", "is not a value; quote a string"),
    ("model.source=./nowhere", "model.source: ./nowhere is not a model folder"),
])  # fmt: skip
def test_a_bad_set_fails_in_one_line_before_loading(pair, message, capsys):
    with pytest.raises(ConfigError, match=message):
        load_config("tiny", sets=[pair])
    assert cli(["run", "tiny", "--set", pair, "--out", "/nonexistent/never-written"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_a_learning_rate_in_e_notation_is_a_number(tmp_path):
    """YAML 1.1 reads 2e-5 (no dot) as text; a float setting takes it as the number everyone means."""
    assert load_config("tiny", sets=["solver.learning_rate=2e-5"]).solver.learning_rate == 2e-5
    file = tmp_path / "run.yaml"
    file.write_text("generator: {learning_rate: 1e-4}\n")
    assert load_config("tiny", path=file).generator.learning_rate == 1e-4
    with pytest.raises(ConfigError, match="solver.learning_rate: expected float, got 'nan'"):
        load_config("tiny", sets=["solver.learning_rate=nan"])


def test_config_prints_every_field_with_its_help_and_loads_back(tmp_path, capsys):
    assert cli(["config", "small_cpu", "--set", "generator.steps=9"]) == 0
    text = capsys.readouterr().out
    path = tmp_path / "resolved.yaml"
    path.write_text(text)
    assert load_config(path=path) == load_config("small_cpu", sets=["generator.steps=9"])
    fields = [f for section in dataclasses.fields(SelfPlayConfig) for f in
              (dataclasses.fields(section.type) if dataclasses.is_dataclass(section.type) else [section])]  # fmt: skip
    assert all(f.metadata.get("help") for f in fields)  # every setting has its help beside it
    assert all(f"{f.name}: " in text and f"# {f.metadata['help']}" in text for f in fields)
    assert yaml.safe_load(text)["generator"]["steps"] == 9


def test_sets_nest_like_yaml():
    assert parse_sets(["a.b=1", "a.c=x y", "d=[1, 2]"]) == {"a": {"b": 1, "c": "x y"}, "d": [1, 2]}
    with pytest.raises(ConfigError, match="set twice"):
        parse_sets(["a=1", "a.b=2"])
    assert to_dict(load_config("tiny", sets=[])) == to_dict(load_config("tiny"))
