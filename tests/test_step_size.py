"""benchmarks/step_size.py: one Solver GRPO step replayed, which way and how far it moved each completion."""

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
from step_size import advantages, step_effect  # noqa: E402

from toolr0_lite.config import ConfigError  # noqa: E402
from toolr0_lite.rewards import completion_text  # noqa: E402


def test_advantages_are_normalised_within_each_group_as_trl_does():
    got = advantages([1.0, 0.0, 2.0, 2.0], group_size=2)
    assert got[2:] == [0.0, 0.0]  # a group without spread teaches nothing
    assert got[0] == pytest.approx(-got[1]) and got[0] == pytest.approx(0.5 / (math.sqrt(0.5) + 1e-4))


def test_one_step_moves_answers_the_way_their_rewards_ask_and_by_the_learning_rate(tmp_path, monkeypatch):
    from toolr0_lite import selfplay
    from toolr0_lite.selfplay import run_selfplay
    from toolr0_lite.selfplay_config import load_config

    def varied(completions, *args, **kwargs):  # the tiny model's rewards are all 0: give each group a spread
        return [len(set(completion_text(c))) / 10 for c in completions]

    monkeypatch.setattr(selfplay, "solver_accuracy_reward_func", varied)
    run_selfplay(load_config("tiny", out=str(tmp_path / "run")), log=lambda _: None)

    result = step_effect(tmp_path / "run", 0, [])
    config = load_config("tiny")
    assert len(result["answers"]) == config.solver.prompts_per_step * config.solver.group_size
    assert all(math.isfinite(a["logp_before"]) and a["tokens"] > 0 for a in result["answers"])
    assert result["advantage_change_correlation"] > 0.5  # answers above their group's mean went up
    tiny_step = step_effect(tmp_path / "run", 0, ["solver.learning_rate=1e-9"])
    assert abs(tiny_step["largest_change"]) < abs(result["largest_change"]) / 100
    big_step = step_effect(tmp_path / "run", 0, ["solver.learning_rate=0.1"])
    assert tiny_step["outside_clip"] == 0.0 < big_step["outside_clip"] <= 1.0  # tokens left the clip range
    assert tiny_step["learning_rate"] == 1e-9


def test_a_run_without_the_iterations_tasks_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="config.yaml is missing: give a run directory"):
        step_effect(tmp_path, 0, [])
