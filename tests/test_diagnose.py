"""benchmarks/diagnose_probes.py: each Solver answer's reason for missing an exact solve."""

import sys
from pathlib import Path

import pytest
from helpers import sound_task

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
from diagnose_probes import miss_reason, ungrounded  # noqa: E402

GOLD = sound_task().gold_calls  # get_forecast(city="Oslo", days=3)


def answer(calls: str) -> str:
    return f"<think>forecast</think><tool_call_answer>{calls}</tool_call_answer>"


@pytest.mark.parametrize("text, reason", [
    (answer('[{"name": "get_forecast", "arguments": {"city": "Oslo", "days": 3}}]'), "solved"),
    (answer('[{"name": "get_forecast", "arguments": {"city": "Oslo", "days": "3"}}]'), "solved"),
    ("I would call the forecast tool.", "no_answer_block"),
    (answer("[{name: get_forecast}]"), "unparsable"),
    (answer("[]"), "no_call_on_a_call_task"),
    (answer('[{"name": "book_hotel", "arguments": {"city": "Oslo"}}]'), "tools_or_count"),
    (answer('[{"name": "get_forecast", "arguments": {"city": "Oslo"}}]'), "argument_keys"),
    (answer('[{"name": "get_forecast", "arguments": {"city": "oslo", "days": 3}}]'), "value_spelling"),
    (answer('[{"name": "get_forecast", "arguments": {"city": "Bergen", "days": 3}}]'), "value_wrong"),
])  # fmt: skip
def test_each_answer_gets_the_first_reason_it_misses(text, reason):
    assert miss_reason(text, GOLD) == reason


def test_no_call_tasks_and_ungrounded_gold():
    assert miss_reason(answer("[]"), []) == "solved"
    assert miss_reason(answer('[{"name": "get_forecast", "arguments": {"city": "Oslo"}}]'), []) == "calls_on_a_no_call_task"
    assert not ungrounded(sound_task())
    task = sound_task()
    task.gold_calls[0].arguments["city"] = "Bergen"  # the request names Oslo
    assert ungrounded(task)
