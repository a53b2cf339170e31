"""Every reward term against the numbers of docs/METHOD.md §3-§4."""

import json
import math

import pytest
from helpers import completion_of, hotel_tool, sound_task, weather_tool

from toolr0_lite.config import ConfigError
from toolr0_lite.parsing import parse_generator_output
from toolr0_lite.records import Call
from toolr0_lite.rewards import (
    GeneratorRewardConfig,
    accuracy_reward,
    call_score,
    frontier_reward,
    generator_format_reward,
    is_grounded,
    question_gate,
    repetition_penalties,
    score_generator_output,
    semantic_reward,
    solver_accuracy_reward_func,
    solver_format_reward_func,
    solver_reward,
    success_rate,
    validity_reward,
    values_match,
)

# ------------------------------------------------------------------ r_diff, the frontier reward


def test_frontier_reward_matches_spec_for_k8():
    expected = [0, 0.581, 1, 1, 1, 1, 1, 0.581, 0.114]
    got = [round(frontier_reward(k / 8), 3) for k in range(9)]
    assert got == expected


def test_frontier_reward_hard_band_ablation():
    assert [frontier_reward(k / 8, falloff=False) for k in range(9)] == [0, 0, 1, 1, 1, 1, 1, 0, 0]


def test_frontier_reward_band_and_sigma_are_configurable():
    assert frontier_reward(0.2, band=(0.1, 0.3)) == 1.0
    assert frontier_reward(0.125, sigma=0.5) > frontier_reward(0.125, sigma=0.12)
    assert math.isclose(frontier_reward(0.9, band=(0.25, 0.75), sigma=0.12), math.exp(-(0.15**2) / (2 * 0.0144)))


# ------------------------------------------------------------------ generator gate, format, validity


def test_question_gate():
    assert question_gate(None) == 0.0
    assert question_gate("Hi?") == 0.0  # under 8 characters
    assert question_gate("<question> the user's request </question>") == 0.0  # echoes the prompt
    assert question_gate("Convert 250 US dollars to euros for my trip budget.") == 0.0  # copies an exemplar
    assert question_gate("Forecast for Oslo tomorrow, please.") == 1.0


def test_generator_format_reward_thirds():
    full = completion_of(sound_task())
    assert generator_format_reward(parse_generator_output(full)) == 1.0
    no_think = full.replace("<think> plan </think>", "")
    assert generator_format_reward(parse_generator_output(no_think)) == pytest.approx(2 / 3)
    bad_calls = full.split("<tool_call_answer>")[0] + "<tool_call_answer> [oops </tool_call_answer>"
    assert generator_format_reward(parse_generator_output(bad_calls)) == pytest.approx(2 / 3)  # tags, tools
    assert generator_format_reward(parse_generator_output("no tags at all")) == 0.0


def test_validity_reward_full_marks_for_sound_task():
    t = sound_task()
    assert validity_reward(t.question, t.tools, t.gold_calls) == pytest.approx(1.0)


def test_validity_checks_every_gold_call_not_only_the_first():
    # The released code checked only the first call; a second call to an unknown tool must cost 0.4.
    t = sound_task()
    calls = t.gold_calls + [Call("delete_everything", {"city": "Oslo"})]
    assert validity_reward(t.question, t.tools, calls) == pytest.approx(0.6)


def test_validity_reads_top_level_required():
    # The released code read `required` only inside `parameters`, so this check never fired.
    t = sound_task(tools=[weather_tool(required=("city", "days")), hotel_tool()])
    calls = [Call("get_forecast", {"city": "Oslo"})]  # lacks the top-level required "days"
    assert validity_reward(t.question, t.tools, calls) == pytest.approx(0.6)


def test_required_inside_json_schema_parameters_is_read_too():
    text = completion_of(sound_task()).replace(
        '"parameters": {"city": {"type": "string", "description": "city name"}, "days": {"type": "integer", "description": "days"}}, "required": ["city"]',
        '"parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "c"}, '
        '"days": {"type": "integer", "description": "d"}}, "required": ["days"]}, "required": ["city"]',
    )
    out = parse_generator_output(text)
    assert out.tools[0].required == ["city", "days"]


def test_validity_grounding_is_one_fifth():
    t = sound_task()
    calls = [Call("get_forecast", {"city": "Bergen", "days": 3})]  # Bergen is not in the question
    assert validity_reward(t.question, t.tools, calls) == pytest.approx(0.8)


def test_validity_no_call_tasks():
    t = sound_task()
    assert validity_reward(t.question, t.tools, []) == 1.0
    assert validity_reward(t.question, t.tools, [], expect_no_call=True) == 1.0
    assert validity_reward(t.question, t.tools, [], expect_no_call=False) == 0.0  # dodged the calls asked for
    assert validity_reward(t.question, t.tools, t.gold_calls, expect_no_call=True) == 0.0


@pytest.mark.parametrize(
    "value, question, grounded",
    [
        ("Oslo", "weather in oslo today", True),
        ("Osl", "weather in oslo today", False),  # whole words only
        ("New York", "Flights to new-york, please", True),
        (1500, "transfer 1,500 dollars", True),
        (1500, "transfer 1500 dollars", True),
        ("1500", "transfer 1,500 dollars", True),
        (5, "book five seats", True),
        ("five", "book 5 seats", True),
        (40, "set it to forty degrees", True),
        (3.0, "wait 3 minutes", True),
        (3.5, "wait 3.5 minutes", True),
        (35, "wait 3.5 minutes", False),
        ("２０２４-05-01", "on 2024-05-01 at noon", True),  # NFKC folds full-width digits
        (True, "anything", True),  # booleans are skipped
        (None, "anything", True),
        ({"a": 1}, "a 1", False),  # nested values cannot be grounded
        ("", "anything at all", False),
    ],
)
def test_grounding(value, question, grounded):
    assert is_grounded(value, question) is grounded


# ------------------------------------------------------------------ r_sem, r_curr, repetition, r_G


def test_semantic_reward():
    assert [semantic_reward(s) for s in (1, 2, 3, 4, 5)] == [0, 0.25, 0.5, 0.75, 1.0]


def test_repetition_penalty_clusters_near_duplicates():
    qs = ["Book a flight from Rome to Paris on May 3", "Book a flight from Rome to Paris on May 4", "Weather in Oslo"]
    assert repetition_penalties(qs) == pytest.approx([-0.2 * 2 / 3, -0.2 * 2 / 3, 0.0])
    assert repetition_penalties(qs, weight=0.5, max_distance=0.01) == [0.0, 0.0, 0.0]


def test_generator_score_combines_terms():
    out = parse_generator_output(completion_of(sound_task()))
    score = score_generator_output(out, False, p_hat=2 / 8, judge_score=5, config=GeneratorRewardConfig())
    assert (score.gate, score.format, score.validity) == (1.0, 1.0, pytest.approx(1.0))
    assert score.curriculum == pytest.approx(0.5 * 1 + 0.5 * 1)
    assert score.total == pytest.approx(3.0)
    no_diff = score_generator_output(out, False, 2 / 8, 5, GeneratorRewardConfig(difficulty_weight=0))
    assert no_diff.total == pytest.approx(2.5)


def test_gate_zeroes_everything():
    task = sound_task(question="the user's request goes here, about Oslo and 3 days")
    out = parse_generator_output(completion_of(task))
    score = score_generator_output(out, False, 0.5, 5, GeneratorRewardConfig())
    assert score.format == 1.0 and score.gate == 0.0 and score.total == 0.0


@pytest.mark.parametrize("bad", [{"band": (0.8, 0.2)}, {"sigma": 0.0}, {"semantic_weight": -1.0}])
def test_generator_reward_config_validation(bad):
    with pytest.raises(ConfigError, match="rewards."):
        GeneratorRewardConfig(**bad)


# ------------------------------------------------------------------ Solver rewards

GOLD = [{"name": "get_forecast", "arguments": {"city": "Oslo", "days": 3}}]


def answer(calls, think="The forecast tool fits.") -> str:
    return f"<think>{think}</think>\n<tool_call_answer>{calls}</tool_call_answer>"


def test_solver_reward_full_marks():
    assert solver_reward(answer(json.dumps(GOLD)), GOLD) == 2.0


def test_solver_format_terms():
    assert solver_reward("no answer block", GOLD) == 0.0
    assert solver_reward(answer("[oops", think=""), GOLD) == pytest.approx(0.3)  # block, no parse
    assert solver_reward(answer("[]", think=""), GOLD) == pytest.approx(0.6)  # parses, no call
    assert solver_reward(answer(json.dumps(GOLD), think=""), GOLD) == pytest.approx(1.0)  # no think: no r_acc


def test_solver_parsing_is_lenient():
    fenced = answer("```json\n[{'name': 'get_forecast', 'arguments': {'city': 'Oslo', 'days': '3'}}]\n```")
    assert solver_reward(fenced, GOLD) == 2.0
    placeholder = answer('[{"name": "get_forecast", "arguments": {"city": "..."}}]')
    assert solver_reward(placeholder, GOLD) == pytest.approx(0.3)


def test_call_score_terms():
    gold = Call("f", {"a": 1, "b": 2})
    assert call_score(Call("f", {"a": 1, "b": 2}), gold) == pytest.approx(1.0)
    assert call_score(Call("g", {"a": 1, "b": 2}), gold) == pytest.approx(0.8)
    assert call_score(Call("f", {"a": 1}), gold) == pytest.approx(0.2 + 0.3 * (2 / 3) + 0.5)
    assert call_score(Call("f", {"a": 9, "b": 2}), gold) == pytest.approx(0.2 + 0.3 + 0.25)
    assert call_score(Call("f", {"c": 1}), gold) == pytest.approx(0.2)
    assert call_score(Call("f"), Call("f")) == pytest.approx(1.0)


def test_values_match_rules():
    assert values_match(5, "5") and values_match(0.1 + 0.2, 0.3) and values_match("a  b", " a b")
    assert not values_match("Oslo", "oslo")  # case-sensitive
    assert not values_match(True, 1) and not values_match("1", True)


def test_accuracy_matching_is_order_free_and_penalises_extras():
    a, b = Call("a", {"x": 1}), Call("b", {"y": 2})
    assert accuracy_reward([b, a], [a, b]) == 1.0
    assert accuracy_reward([a, b, Call("c")], [a, b]) == pytest.approx(1 / 1.25)
    assert accuracy_reward([a], [a, b]) == pytest.approx(0.5)
    assert accuracy_reward([], [a]) == 0.0
    # greedy: the second gold call may not reuse the prediction the first one took
    assert accuracy_reward([a], [a, a]) == pytest.approx(0.5)


def test_no_call_tasks_score_only_an_empty_answer():
    assert solver_reward(answer("[]"), []) == 2.0
    assert solver_reward(answer(json.dumps(GOLD)), []) == pytest.approx(0.6)  # format only, no accuracy


def test_success_rate_counts_exact_matches():
    gold = [Call("get_forecast", {"city": "Oslo", "days": 3})]
    wrong = answer('[{"name": "get_forecast", "arguments": {"city": "Bergen", "days": 3}}]')
    assert success_rate([answer(json.dumps(GOLD))] * 3 + [wrong], gold) == 0.75
    assert success_rate([], gold) == 0.0


def test_trl_reward_functions_accept_strings_and_chat_messages():
    completions = [answer(json.dumps(GOLD)), [{"role": "assistant", "content": answer("[]")}]]
    columns = [json.dumps(GOLD), GOLD]
    assert solver_format_reward_func(completions=completions, gold_calls=columns, prompts=None) == [1.0, 0.6]
    assert solver_accuracy_reward_func(completions=completions, gold_calls=columns) == [1.0, 0.0]


def test_trl_reward_functions_score_an_answer_begun_for_the_model_as_a_whole():
    """With the think prefill the model writes only what follows `<think>`: alone that text fails the think gate."""
    rest = answer(json.dumps(GOLD)).removeprefix("<think>")
    gold = [json.dumps(GOLD)]
    assert solver_accuracy_reward_func(completions=[rest], gold_calls=gold) == [0.0]
    assert solver_accuracy_reward_func(completions=[rest], gold_calls=gold, answer_prefix=["<think>"]) == [1.0]
    assert solver_format_reward_func(completions=[rest], gold_calls=gold, answer_prefix=["<think>"]) == [1.0]
    assert solver_format_reward_func(completions=[answer("[]")], gold_calls=gold, answer_prefix=[""]) == [0.6]


def test_malformed_gold_is_a_programmer_error():
    with pytest.raises(ValueError, match="gold_calls"):
        solver_reward(answer("[]"), [{"arguments": {}}])


def test_the_solver_phase_reward_is_r_fmt_plus_r_acc_and_keeps_every_answer(tmp_path):
    """SolverReward: what TRL receives is r_S per completion; each answer is on disk whole, with its terms."""
    from toolr0_lite.rundir import RunDir, read_jsonl
    from toolr0_lite.selfplay import SolverReward

    gold = json.dumps([{"name": "w", "arguments": {"city": "Oslo"}}])
    right = 'Oslo</think><tool_call_answer>[{"name": "w", "arguments": {"city": "Oslo"}}]</tool_call_answer>'
    unclosed = 'Oslo</think><tool_call_answer>[{"name": "w", "arguments": {"city": "Oslo"}}]'
    reward = SolverReward(RunDir(tmp_path), 1)
    assert reward(completions=[right, unclosed], gold_calls=[gold, gold], answer_prefix=["<think>", "<think>"]) == [2.0, 0.0]
    rows = read_jsonl(tmp_path / "iter_01" / "solver_rollouts.jsonl")
    assert [r["text"] for r in rows] == ["<think>" + right, "<think>" + unclosed]
    assert [(r["format"], r["accuracy"]) for r in rows] == [(1.0, 1.0), (0.0, 0.0)]
    (step,) = [m for m in read_jsonl(tmp_path / "metrics.jsonl") if m["phase"] == "solver"]
    assert step["mean_reward"] == 1.0 and step["answered_share"] == 0.5 and step["step"] == 0
