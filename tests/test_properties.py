"""Model output is untrusted: arbitrary text and JSON-ish structures never raise and score within range."""

import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolr0_lite.parsing import UNPARSED, parse_generator_output, parse_lenient, to_calls, to_tool
from toolr0_lite.pipeline import (
    agreement_filter,
    curriculum_select,
    deduplicate,
    fingerprint,
    verify,
    verify_candidates,
)
from toolr0_lite.prompts import generator_completion, parse_difficulty, parse_judge_score
from toolr0_lite.records import Call, Spec, Task, Tool
from toolr0_lite.rewards import (
    GeneratorRewardConfig,
    accuracy_reward,
    frontier_reward,
    repetition_penalties,
    score_generator_output,
    solver_reward,
    success_rate,
)

settings.register_profile("ci", max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", 150)), suppress_health_check=[HealthCheck.too_slow], deadline=None)
settings.load_profile("ci")

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
jsonish = st.recursive(
    scalars, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
    max_leaves=12,
)
names = st.text(min_size=1, max_size=12).filter(str.strip)
arguments = st.dictionaries(st.text(max_size=8), scalars, max_size=4)
calls = st.builds(Call, names, arguments)
param_schemas = st.dictionaries(st.text(max_size=8), st.fixed_dictionaries({"type": st.sampled_from(
    ["string", "integer", "number", "boolean", "date", "object"]), "description": st.text(max_size=10)}), max_size=3)
tools = st.builds(Tool, names, st.text(max_size=30), param_schemas, st.lists(st.text(max_size=8), max_size=3))
specs = st.builds(Spec, st.text(max_size=10), st.sampled_from(["single_turn", "multi_turn"]),
                  st.integers(0, 3), st.integers(1, 8))
tasks = st.builds(
    Task, st.text(max_size=80), st.lists(tools, max_size=4), st.lists(calls, max_size=3), st.none() | specs,
    st.dictionaries(st.text(max_size=8), st.floats(allow_nan=False), max_size=3),
    st.none() | st.sampled_from(["easy", "medium", "hard"]), st.text(max_size=8),
)
# Text shaped like model output: tags around arbitrary JSON-ish content, mixed with noise.
tagged = st.builds(
    lambda q, t, c, noise: f"{noise}<think>x</think><question>{q}</question><available_tools>{t}</available_tools>"
    f"<tool_call_answer>{c}</tool_call_answer>{noise}",
    st.text(max_size=60), jsonish.map(json.dumps) | st.text(max_size=40), jsonish.map(json.dumps) | st.text(max_size=40),
    st.text(max_size=10),
)
outputs = st.text(max_size=200) | tagged


@given(st.text(max_size=200) | jsonish.map(json.dumps) | jsonish.map(repr))
def test_parse_lenient_never_raises(text):
    value = parse_lenient(text)
    if value is not UNPARSED:
        json.dumps(value, allow_nan=False)  # whatever parses is plain JSON data


@given(jsonish)
def test_to_calls_and_to_tool_never_raise(value):
    result = to_calls(value)
    assert isinstance(result, str) or all(isinstance(c, Call) and isinstance(c.arguments, dict) for c in result)
    assert isinstance(to_tool(value), (str, Tool))


@given(outputs, specs, st.none() | st.floats(0, 1), st.none() | st.integers(1, 5), st.booleans())
def test_generator_reward_in_range(text, spec, p_hat, judge, falloff):
    out = parse_generator_output(text)
    score = score_generator_output(out, spec.no_call, p_hat, judge, GeneratorRewardConfig(falloff=falloff))
    for term in (score.gate, score.format, score.validity, score.difficulty, score.semantic, score.curriculum):
        assert 0.0 <= term <= 1.0
    assert 0.0 <= score.total <= 3.0


@given(outputs, st.lists(st.fixed_dictionaries({"name": names, "arguments": arguments}), max_size=3))
def test_solver_reward_in_range(text, gold):
    assert 0.0 <= solver_reward(text, gold) <= 2.0


@given(st.lists(calls, max_size=4), st.lists(calls, max_size=4))
def test_accuracy_in_unit_interval_and_perfect_on_itself(pred, gold):
    assert 0.0 <= accuracy_reward(pred, gold) <= 1.0
    assert accuracy_reward(gold, gold) == 1.0


@given(st.floats(-1, 2), st.floats(0, 1), st.floats(0, 1), st.floats(0.01, 1))
def test_frontier_reward_in_unit_interval(p_hat, a, b, sigma):
    assert 0.0 <= frontier_reward(p_hat, (min(a, b), max(a, b)), sigma) <= 1.0


@given(st.lists(st.text(max_size=40), max_size=8))
def test_repetition_penalties_in_range(questions):
    assert all(-0.2 <= p <= 0.0 for p in repetition_penalties(questions))


@given(st.text(max_size=100))
def test_judge_parsers_always_answer(text):
    assert parse_judge_score(text) in range(1, 6)
    assert parse_difficulty(text) in ("easy", "medium", "hard")


@given(tasks)
def test_task_round_trip_is_lossless(task):
    assert Task.from_json(task.to_json()) == task


@given(st.lists(tasks, max_size=6), st.data())
def test_pipeline_stages_never_raise(batch, data):
    for task in batch:
        reason = verify(task)
        assert reason is None or isinstance(reason[0], str)
        assert len(fingerprint(task)) == 40
    kept, dropped = deduplicate(batch)
    assert len(kept) + len(dropped) == len(batch)
    answers = [data.draw(st.lists(outputs, max_size=3)) for _ in batch]
    kept, dropped = agreement_filter(batch, answers)
    assert len(kept) + len(dropped) == len(batch)
    n = data.draw(st.integers(0, 10))
    assert len(curriculum_select(batch, n)) == min(n, len(batch))
    assert all(0.0 <= success_rate(a, t.gold_calls) <= 1.0 for t, a in zip(batch, answers))


@given(st.lists(outputs | tasks.map(generator_completion), max_size=5), specs)
def test_verify_candidates_accounts_for_every_candidate(texts, spec):
    accepted, rejected = verify_candidates(texts, [spec] * len(texts))
    assert len(accepted) + len(rejected) == len(texts)
    assert all(r.reason for r in rejected)


def test_fuzzed_completions_never_raise_or_warn():
    """benchmarks/fuzz.py at a test's size: mutated real completions through parsing, rewards and the pipeline."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    import fuzz

    n, errors, examples, warned, _ = fuzz.run(3000, seed=1)
    assert n == 3000 and not errors and warned == 0, examples
