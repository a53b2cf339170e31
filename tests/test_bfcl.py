"""BFCL through its own package: the ground truth turned into answers must pass its checker; wrong answers must not."""

import copy
import json
from collections import Counter

import pytest

from toolr0_lite.bfcl import (
    AST_CATEGORIES,
    CATEGORIES,
    LIVE_AST,
    NON_LIVE,
    _literal,
    aggregate,
    bfcl_messages,
    expand_categories,
    load_items,
    score,
    score_text,
    to_bfcl_calls,
)
from toolr0_lite.records import Call

pytestmark = pytest.mark.bfcl


def first_option(options):
    """BFCL lists the acceptable values of each argument; take the first (dicts hold option lists inside, or
    plain values in some live items)."""
    value = options[0] if isinstance(options, list) else options
    if isinstance(value, dict):
        return {k: first_option(o) for k, o in value.items() if not (isinstance(o, list) and (not o or o[0] == ""))}
    return value


def gold_calls(item) -> list[Call]:
    """The item's ground truth as the Solver would decode it ("" as first option marks an optional argument)."""
    return [Call(name, {k: first_option(o) for k, o in args.items() if o and o[0] != ""})
            for call in item.answer for name, args in call.items()]  # fmt: skip


def bfcl_text(item) -> str:
    """The item's ground truth as a model answers in BFCL's prompting format: `[f(a=1, b='x'), g()]`; Java and
    JavaScript values as that language's source text."""
    declared = {f["name"]: f["parameters"].get("properties", {}) for f in item.checked}

    def value(v, kind: dict) -> str:
        if item.language == "python":
            return repr(v)
        return json.dumps(v) if isinstance(v, str) else _literal(v, kind, item.language)

    return "[" + ", ".join(f"{c.name}(" + ", ".join(f"{k}={value(v, declared.get(c.name, {}).get(k, {}))}"
                                                  for k, v in c.arguments.items()) + ")"
                           for c in gold_calls(item)) + "]"  # fmt: skip


@pytest.fixture(scope="module")
def items():
    return load_items(CATEGORIES)


def test_every_category_loads_with_its_documented_size(items):
    sizes = Counter(i.category for i in items)
    assert sizes == {"simple_python": 400, "simple_java": 100, "simple_javascript": 50, "multiple": 200,
                     "parallel": 200, "parallel_multiple": 200, "irrelevance": 240, "live_simple": 258,
                     "live_multiple": 1053, "live_parallel": 16, "live_parallel_multiple": 24, "live_irrelevance": 884,
                     "live_relevance": 16}  # fmt: skip
    assert all(i.answer is None for i in items if "relevance" in i.category)
    assert all(i.messages and i.question for i in items)


@pytest.mark.parametrize("category", AST_CATEGORIES + LIVE_AST)
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
    subset = load_items(NON_LIVE, limit=14, seed=3)
    assert Counter(i.category for i in subset) == {c: 2 for c in NON_LIVE}
    assert [i.id for i in subset] == [i.id for i in load_items(NON_LIVE, limit=14, seed=3)]
    assert [i.id for i in subset] != [i.id for i in load_items(NON_LIVE, limit=14, seed=4)]
    assert len(load_items(["simple_javascript"], limit=1000)) == 50


def test_unknown_category_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="simple_python"):
        load_items(["live_simpel"])


def test_items_become_solver_tasks_with_their_functions_as_tools(items):
    item = next(i for i in items if i.id == "simple_python_0")
    task = item.to_task()
    assert task.question.startswith("Find the area of a triangle")
    assert [t.name for t in task.tools] == ["calculate_triangle_area"]
    assert task.tools[0].required == ["base", "height"] and "unit" in task.tools[0].parameters


def test_the_leaderboard_aggregates():
    acc = {"simple_python": 0.9, "simple_java": 0.6, "simple_javascript": 0.3, "multiple": 0.8, "parallel": 0.4,
           "parallel_multiple": 0.2, "irrelevance": 0.7, "live_simple": 0.5, "live_multiple": 0.2,
           "live_irrelevance": 0.3, "live_relevance": 1.0}  # fmt: skip
    n = {"live_simple": 100, "live_multiple": 300}
    got = aggregate({c: {"accuracy": a, "n": n.get(c, 10)} for c, a in acc.items()})
    assert got["non_live_simple"] == pytest.approx(0.6)
    assert got["non_live_overall"] == pytest.approx((0.6 + 0.8 + 0.4 + 0.2) / 4)
    assert got["live_overall"] == pytest.approx((0.5 * 100 + 0.2 * 300) / 400)  # weighted by items, as bfcl-eval
    assert got["irrelevance"] == pytest.approx(0.5)  # unweighted mean of irrelevance and live_irrelevance
    assert got["relevance"] == 1.0
    assert got["overall"] == pytest.approx((got["non_live_overall"] + got["live_overall"] + 0.5) / 3)
    assert aggregate({"parallel": {"accuracy": 0.5, "n": 3}}) == {"non_live_overall": 0.5, "overall": 0.5}


# ---------------------------------------------------------------- BFCL's own prompting mode


# simple_java: BFCL's own Java parser cannot read a HashMap initialiser (3 items) and reads array elements
# inconsistently (quoted or not), so its ground truth written as Java source passes 92%; measured, not hidden.
THRESHOLD = {"simple_java": 0.90}


@pytest.mark.parametrize("category", AST_CATEGORIES + LIVE_AST)
def test_ground_truth_in_bfcl_prompt_format_passes_bfcls_decoder_and_checker(items, category):
    chosen = [i for i in items if i.category == category]
    verdicts = [score_text(i, bfcl_text(i))[0] for i in chosen]
    accuracy = sum(v.valid for v in verdicts) / len(verdicts)
    failures = Counter(v.error_type for v in verdicts if not v.valid)
    print(f"{category} (bfcl prompt): {accuracy:.3f} of {len(chosen)}; failures {dict(failures)}")
    assert accuracy >= THRESHOLD.get(category, 0.97), failures


def test_bfcl_prompt_mode_uses_the_leaderboards_prompt_and_decoder(items):
    item = next(i for i in items if i.id == "simple_python_0")
    messages = bfcl_messages(item)
    assert messages[0]["role"] == "system" and "calculate_triangle_area" in messages[0]["content"]
    assert "[func_name1(params_name1=params_value1" in messages[0]["content"] and messages[-1] == item.messages[-1]
    assert item.messages[0]["role"] == "user"  # the item itself is left as it was
    verdict, decoded = score_text(item, "[calculate_triangle_area(base=10, height=5)]")
    assert verdict.valid and decoded == [{"calculate_triangle_area": {"base": 10, "height": 5}}]
    wrong, _ = score_text(item, "[calculate_triangle_area(base=11, height=5)]")
    assert not wrong.valid and wrong.error_type.startswith("value_error")
    prose, decoded = score_text(item, "The area is 25 square units.")
    assert (prose.valid, prose.error_type, decoded) == (False, "ast_decoder:decoder_failed", None)


@pytest.mark.parametrize("category, prose, call", [
    ("irrelevance", True, False), ("live_irrelevance", True, False), ("live_relevance", False, True),
])  # fmt: skip
def test_relevance_follows_the_leaderboard_in_both_modes(items, category, prose, call):
    item = next(i for i in items if i.category == category)
    name = item.functions[0]["name"]
    assert score_text(item, "I cannot help with that; none of the functions fits.")[0].valid is prose
    assert score_text(item, f"[{name}()]")[0].valid is call
    assert score_text(item, "[]")[0].valid is prose  # an empty list is no call
    assert score(item, None, "no answer block").valid is prose
    assert score(item, [Call(name, {})]).valid is call


def test_groups_of_categories_expand_in_order():
    assert expand_categories(["non_live"]) == list(NON_LIVE)
    assert expand_categories(["all"]) == list(CATEGORIES) and len(CATEGORIES) == 13
    assert expand_categories(["irrelevance", "non_live"])[0] == "irrelevance"


def test_a_live_turn_with_a_system_message_and_replies_becomes_one_request(items):
    item = next(i for i in items if i.category == "live_irrelevance" and len(i.messages) > 2)
    assert "# Conversation\nUser:" in item.question and "Agent:" in item.question
    system = next((i for i in items if i.messages[0]["role"] == "system"), None)
    assert system is None or system.question.startswith(system.messages[0]["content"])
