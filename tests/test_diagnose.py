"""benchmarks/diagnose_probes.py: each Solver answer's reason for missing an exact solve."""

import json
import sys
from pathlib import Path

import pytest
from helpers import sound_task

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
from diagnose_probes import (  # noqa: E402
    copies_exemplar,
    heldout_answers,
    heldout_report,
    miss_reason,
    paired_change,
    ungrounded,
)

from toolr0_lite.prompts import EXEMPLARS  # noqa: E402

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


def test_heldout_answers_by_group_with_copied_reasoning(tmp_path, capsys):
    hand, generated, unground = sound_task(id="hand-01"), sound_task(id="generated-0"), sound_task(id="generated-1")
    unground.gold_calls[0].arguments["city"] = "Bergen"
    right = '[{"name": "get_forecast", "arguments": {"city": "Oslo", "days": 3}}]'
    copied = f"<think> {EXEMPLARS[0][1]} </think><tool_call_answer>[]</tool_call_answer>"
    rows = [{"benchmark": "heldout", "id": "hand-01", "raw": answer(right), "reward": 2.0},
            {"benchmark": "heldout", "id": "generated-0", "raw": copied, "reward": 0.6},
            {"benchmark": "heldout", "id": "generated-1", "raw": answer(right), "reward": 1.5},
            {"benchmark": "bfcl", "id": "simple_python_1", "raw": copied}]  # fmt: skip
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    heldout_report([hand, generated, unground], tmp_path, heldout_answers([hand, generated, unground], tmp_path))
    out = capsys.readouterr().out
    assert "3 held-out answers" in out
    assert "hand-written: 1 tasks, mean r_S 2.000; solved 1; a worked example's reasoning copied in 0" in out
    assert "generated: 1 tasks, mean r_S 0.600; no_call_on_a_call_task 1; a worked example's reasoning copied in 1" in out
    assert "generated, ungrounded gold: 1 tasks, mean r_S 1.500; value_wrong 1" in out
    assert copies_exemplar(f"<think>{EXEMPLARS[3][1].upper()}</think>") and not copies_exemplar(answer("[]"))


def test_paired_change_task_by_task():
    before = {k: {"reward": r, "exact_match": r == 2.0} for k, r in (("a", 1.0), ("b", 2.0), ("c", 0.5), ("d", 1.0))}
    after = {k: {"reward": r, "exact_match": r == 2.0} for k, r in (("a", 2.0), ("b", 2.0), ("c", 1.0), ("e", 0.0))}
    # a +1.0, b 0, c +0.5 (d and e are not in both): mean 0.5, SE sqrt(0.25 / 3)
    assert paired_change(before, after) == "mean r_S +0.500 ± 0.289 (SE) over 3 tasks: 2 up, 0 down; exact 1 → 2"
    assert paired_change(before, {"a": after["a"]}) == "fewer than 2 tasks in common"
