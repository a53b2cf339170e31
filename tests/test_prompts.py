"""Prompts: the spec is stated, exemplars rotate and come from other domains, and they are sound tasks."""

from dataclasses import replace

import pytest
from helpers import sound_task

from toolr0_lite.parsing import parse_generator_output
from toolr0_lite.pipeline import verify
from toolr0_lite.prompts import (
    EXEMPLARS,
    generator_completion,
    generator_messages,
    parse_difficulty,
    pick_exemplar,
    semantic_judge_messages,
    solver_examples,
    solver_messages,
)
from toolr0_lite.records import Spec
from toolr0_lite.rewards import generator_format_reward, question_gate, validity_reward


def test_generator_prompt_states_the_spec():
    messages = generator_messages(Spec("legal", "multi_turn", 1, 5))
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "Domain: legal" in messages[-1]["content"] and "Tools on the menu: 5" in messages[-1]["content"]
    assert "Gold calls: 0" in generator_messages(Spec("legal", "single_turn", 0, 3))[-1]["content"]


def test_exemplar_is_a_prior_turn_from_another_domain():
    spec = Spec("weather", "single_turn", 1, 4)
    for i in range(6):
        task, _ = pick_exemplar(spec, i)
        assert task.spec.domain != "weather" and not task.spec.no_call
    messages = generator_messages(spec, exemplar_index=0)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert {pick_exemplar(spec, i)[0].question for i in range(3)} != {pick_exemplar(spec, 0)[0].question}
    assert pick_exemplar(Spec("weather", "single_turn", 0, 2), 0)[0].gold_calls == []


@pytest.mark.parametrize("task, think", EXEMPLARS, ids=[t.spec.domain for t, _ in EXEMPLARS])
def test_every_exemplar_is_a_sound_task(task, think):
    out = parse_generator_output(generator_completion(task, think))
    assert out.error is None and generator_format_reward(out) == 1.0
    assert validity_reward(task.question, task.tools, task.gold_calls, task.spec.no_call) == pytest.approx(1.0)
    assert verify(replace(task, question=task.question + " Thanks!")) is None
    # copying an exemplar word for word earns nothing and is rejected
    assert question_gate(task.question) == 0.0 and verify(task)[0] == "prompt_echo"


def test_solver_and_judge_prompts_hold_the_task():
    task = sound_task()
    user = solver_messages(task)[1]["content"]
    assert user.startswith("User request:\n" + task.question) and '"get_forecast"' in user
    assert "Gold calls (JSON)" in semantic_judge_messages(task)[1]["content"]
    assert parse_difficulty("<think>hard?</think> <difficulty>Easy</difficulty>") == "easy"


def test_solver_exemplar_is_a_prior_solved_turn_from_another_domain():
    task = sound_task()
    messages = solver_messages(task, exemplar_index=0)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert "<tool_call_answer>" in messages[2]["content"] and "weather" not in messages[1]["content"].lower()
    assert solver_messages(task)[-1] == messages[-1]
    assert {solver_messages(task, i)[1]["content"] for i in range(4)} != {messages[1]["content"]}


def test_an_example_pair_shows_a_call_and_a_no_call_example_each_last_in_turn():
    task = sound_task()
    for i in range(6):
        messages = solver_messages(task, i, example_pair=True)
        assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
        answers = [messages[2]["content"], messages[4]["content"]]
        kinds = ["<tool_call_answer>[]</tool_call_answer>" in a for a in answers]  # a no-call example's answer
        assert sorted(kinds) == [False, True] and kinds[-1] == (i % 2 == 0)
        assert "weather" not in (messages[1]["content"] + messages[3]["content"]).lower()  # never the task's domain
        assert messages[-1] == solver_messages(task, i)[-1]
    assert len({solver_messages(task, i, example_pair=True)[3]["content"] for i in range(6)}) > 1  # they rotate


def test_a_pair_in_a_fixed_order_shows_the_same_kind_last_in_every_prompt():
    task = sound_task()
    for last, no_call_last in (("call", False), ("no_call", True)):
        for i in range(6):
            answers = [m["content"] for m in solver_messages(task, i, example_pair=True, example_last=last)[2:5:2]]
            assert ["<tool_call_answer>[]</tool_call_answer>" in a for a in answers] == [not no_call_last, no_call_last]
        assert len({solver_messages(task, i, True, True, last)[3]["content"] for i in range(6)}) > 1  # still rotating


def test_each_kind_of_the_pair_rotates_through_its_examples_in_each_place():
    # With two no-call exemplars, indexing by the task's place would show the same one whenever a no-call example
    # is last: a single sentence to copy (the trained 0.5B Solver declined by copying it 23 times of 24).
    task = sound_task()  # weather: every exemplar of another domain may be shown
    for last in (0, 1):  # the no-call example last (even places), the call example last (odd)
        shown = [solver_examples(task, i, pair=True) for i in range(last, 16, 2)]
        for kind in (True, False):
            pool = {t.question for t, _ in EXEMPLARS if bool(t.gold_calls) == kind and t.spec.domain != "weather"}
            assert {t.question for pair in shown for t, _ in pair if bool(t.gold_calls) == kind} == pool
