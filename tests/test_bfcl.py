"""BFCL through its own package: the ground truth turned into answers must pass its checker; wrong answers must not."""

import copy
from collections import Counter

import pytest

from toolr0_lite.bfcl import AST_CATEGORIES, CATEGORIES, aggregate, load_items, score, to_bfcl_calls
from toolr0_lite.records import Call

pytestmark = pytest.mark.bfcl


def first_option(options):
    """BFCL lists the acceptable values of each argument; take the first (dicts hold option lists inside)."""
    value = options[0]
    if isinstance(value, dict):
        return {k: first_option(o) for k, o in value.items() if o and o[0] != ""}
    return value


def gold_calls(item) -> list[Call]:
    """The item's ground truth as the Solver would decode it ("" as first option marks an optional argument)."""
    return [Call(name, {k: first_option(o) for k, o in args.items() if o and o[0] != ""})
            for call in item.answer for name, args in call.items()]  # fmt: skip


@pytest.fixture(scope="module")
def items():
    return load_items()


def test_every_category_loads_with_its_documented_size(items):
    sizes = Counter(i.category for i in items)
    assert sizes == {"simple_python": 400, "simple_java": 100, "simple_javascript": 50, "multiple": 200,
                     "parallel": 200, "parallel_multiple": 200, "irrelevance": 240}  # fmt: skip
    assert all(i.answer is None for i in items if i.category == "irrelevance")


@pytest.mark.parametrize("category", AST_CATEGORIES)
def test_ground_truth_as_answers_scores_at_least_97_percent(items, category):
    chosen = [i for i in items if i.category == category]
    verdicts = [score(i, gold_calls(i)) for i in chosen]
    accuracy = sum(v.valid for v in verdicts) / len(verdicts)
    failures = Counter(v.error_type for v in verdicts if not v.valid)
    print(f"{category}: {accuracy:.3f} of {len(chosen)}; failures {dict(failures)}")
    assert accuracy >= 0.97, failures


def test_a_wrong_value_fails(items):
    item = next(i for i in items if i.id == "simple_python_0")  # calculate_triangle_area(base=10, height=5)
    calls = gold_calls(item)
    assert score(item, calls).valid
    calls[0].arguments["base"] = 11
    verdict = score(item, calls)
    assert not verdict.valid and verdict.error_type.startswith("value_error")


def test_a_missing_call_fails(items):
    item = next(i for i in items if i.category == "parallel")
    assert score(item, gold_calls(item)).valid
    verdict = score(item, gold_calls(item)[:-1])
    assert not verdict.valid and "wrong_count" in verdict.error_type


def test_irrelevance_is_correct_only_without_a_call(items):
    item = next(i for i in items if i.category == "irrelevance")
    tool = item.functions[0]["name"]
    assert not score(item, [Call(tool, {})]).valid
    assert score(item, []).valid  # an explicit empty call list
    assert score(item, None, "missing or empty <tool_call_answer>").valid  # prose: no call


def test_an_unparsable_answer_fails_an_ast_item_with_the_reason(items):
    item = next(i for i in items if i.category == "simple_python")
    verdict = score(item, None, "<tool_call_answer> is not valid JSON")
    assert (verdict.valid, verdict.error_type, verdict.error) == (
        False, "ast_decoder:decoder_failed", "<tool_call_answer> is not valid JSON")  # fmt: skip


def test_a_checker_exception_is_a_failure_not_a_crash(items):
    item = copy.deepcopy(next(i for i in items if i.id == "simple_java_22"))
    item.checked[0]["parameters"]["properties"]["newStatus"]["type"] = "NoSuchType"  # the checker raises KeyError
    verdict = score(item, gold_calls(item))
    assert (verdict.valid, verdict.error_type) == (False, "checker_exception")
    assert verdict.error.startswith("KeyError")


def test_java_and_javascript_values_become_source_text(items):
    java = next(i for i in items if i.id == "simple_java_22")  # ids: ArrayList<long>
    out = to_bfcl_calls([Call("f", {})], java)
    assert out == [{"f": {}}]
    name = java.checked[0]["name"]
    converted = to_bfcl_calls([Call(name, {"ids": [101, 202], "newStatus": 2})], java)[0][name]
    assert converted == {"ids": "new ArrayList<>(Arrays.asList(101L, 202L))", "newStatus": "2"}
    js = next(i for i in items if i.id == "simple_javascript_0")  # validateUserInput(inputField, isComplete: Boolean)
    converted = to_bfcl_calls([Call("validateUserInput", {"inputField": "userInputField", "isComplete": True})], js)
    assert converted == [{"validateUserInput": {"inputField": "userInputField", "isComplete": "true"}}]


def test_limit_takes_a_seeded_subset_spread_over_categories():
    subset = load_items(limit=14, seed=3)
    assert Counter(i.category for i in subset) == {c: 2 for c in CATEGORIES}
    assert [i.id for i in subset] == [i.id for i in load_items(limit=14, seed=3)]
    assert [i.id for i in subset] != [i.id for i in load_items(limit=14, seed=4)]
    assert len(load_items(["simple_javascript"], limit=1000)) == 50


def test_unknown_category_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="simple_python"):
        load_items(["live_simple"])


def test_items_become_solver_tasks_with_their_functions_as_tools(items):
    item = next(i for i in items if i.id == "simple_python_0")
    task = item.to_task()
    assert task.question.startswith("Find the area of a triangle")
    assert [t.name for t in task.tools] == ["calculate_triangle_area"]
    assert task.tools[0].required == ["base", "height"] and "unit" in task.tools[0].parameters


def test_the_leaderboard_aggregates():
    acc = {"simple_python": 0.9, "simple_java": 0.6, "simple_javascript": 0.3, "multiple": 0.8, "parallel": 0.4,
           "parallel_multiple": 0.2, "irrelevance": 0.7}  # fmt: skip
    got = aggregate(acc)
    assert got["non_live_simple"] == pytest.approx(0.6)
    assert got["non_live_overall"] == pytest.approx((0.6 + 0.8 + 0.4 + 0.2) / 4)
    assert got["irrelevance"] == 0.7
    assert aggregate({"parallel": 0.5}) == {"non_live_overall": 0.5}
