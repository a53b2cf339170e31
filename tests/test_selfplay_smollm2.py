"""One small self-play iteration on SmolLM2-135M offline (slow: a few minutes on 2 CPU cores).

It asserts that every phase ran and prints the Solver's mean reward on held-out tasks before and after;
it does not assert learning (a few steps of a 135M model need not move it).
"""

import pytest
from helpers import sound_task

from toolr0_lite.models import RoleModel
from toolr0_lite.records import Call, Spec
from toolr0_lite.rundir import read_jsonl
from toolr0_lite.selfplay import mean_solver_reward, run_selfplay
from toolr0_lite.selfplay_config import load_config

pytestmark = pytest.mark.slow

HELD_OUT = [
    sound_task(),
    sound_task(question="Book a hotel room in Oslo for the conference next week, please.",
               gold_calls=[Call("book_hotel", {"city": "Oslo"})]),
    sound_task(question="Please repaint my garage door bright red before the weekend.", gold_calls=[],
               spec=Spec("weather", "single_turn", 0, 2)),
]  # fmt: skip


def test_one_small_iteration_on_smollm2(tmp_path):
    config = load_config(
        "small_cpu", out=str(tmp_path / "run"),
        generator={"steps": 1, "max_completion_length": 96},
        solver={"steps": 2, "max_completion_length": 64},
        probe={"samples": 4, "max_new_tokens": 48},
        synthesis={"candidates": 8, "batch_size": 8, "tasks": 4, "max_new_tokens": 128, "min_tasks": 4},
    )  # fmt: skip
    roles = RoleModel.load(config.model)
    before = mean_solver_reward(roles, HELD_OUT, config, samples=4, max_new_tokens=64)
    run = run_selfplay(config)
    roles.load_role("solver", run.path("iter_00", "solver"))
    after = mean_solver_reward(roles, HELD_OUT, config, samples=4, max_new_tokens=64)
    print(f"\nSmolLM2-135M Solver mean reward on {len(HELD_OUT)} held-out tasks: before {before:.3f}, after {after:.3f}")

    assert all(run.is_done(f"iter_00/{unit}") for unit in ("generator", "synthesis", "solver"))
    assert len(read_jsonl(run.path("iter_00", "candidates.jsonl"))) == 8
    assert len(read_jsonl(run.path("iter_00", "tasks.jsonl"))) >= 4
    assert 0.0 <= before <= 2.0 and 0.0 <= after <= 2.0
