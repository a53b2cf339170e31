"""The task pipeline of docs/METHOD.md §5: every reject rule, dedup, Solver agreement, curriculum selection."""

import json
from collections import Counter

import pytest
from helpers import completion_of, hotel_tool, sound_task, weather_tool

from toolr0_lite.pipeline import (
    agreement_filter,
    check_candidate,
    curriculum_select,
    deduplicate,
    fingerprint,
    grounding_filter,
    twin_steps,
    verify,
    verify_and_deduplicate,
    verify_candidates,
    with_no_call_twins,
)
from toolr0_lite.records import Call, Spec, Task


def test_sound_task_passes():
    assert verify(sound_task()) is None


def _tool(**changes):
    tool = weather_tool()
    for k, v in changes.items():
        setattr(tool, k, v)
    return tool


@pytest.mark.parametrize(
    "changes, reason",
    [
        ({"question": "the user's request about Oslo weather"}, "prompt_echo"),
        ({"question": "Weather in Oslo?"}, "trivial_question"),
        ({"question": "What is the capital of Norway, the country in the north?"}, "trivial_question"),
        ({"question": "Please tell me a joke about the weather in Oslo."}, "trivial_question"),
        ({"question": "What is the forecast like in Oslo these days?", "gold_calls": [Call("get_forecast", {"city": "Oslo"})]},
         "trivial_question"),
        ({"tools": [_tool(name="fn"), hotel_tool()]}, "bad_tool_name"),
        ({"tools": [_tool(name="function"), hotel_tool()]}, "bad_tool_name"),
        ({"tools": [_tool(name="API"), hotel_tool()]}, "bad_tool_name"),
        ({"tools": [weather_tool(), weather_tool()]}, "duplicate_tool_name"),
        ({"tools": [_tool(description="get"), hotel_tool()]}, "short_description"),
        ({"tools": [_tool(parameters={}, required=[]), hotel_tool()], "gold_calls": [Call("get_forecast")]},
         "empty_parameters"),
        ({"tools": [_tool(parameters={"city": {"type": "object"}, "days": {"type": "integer"}}), hotel_tool()]},
         "non_primitive_type"),
        ({"tools": [_tool(parameters={"city": "string", "days": {"type": "integer"}}), hotel_tool()]},
         "non_primitive_type"),
        ({"gold_calls": [Call("get_forecast", {"city": "Oslo", "days": 3}), Call("get_weather", {"city": "Oslo"})]},
         "unknown_tool"),
        ({"gold_calls": [Call("get_forecast", {"city": {"name": "Oslo"}})]}, "nested_argument"),
        ({"gold_calls": [Call("get_forecast", {"city": ["Oslo"]})]}, "nested_argument"),
        ({"gold_calls": [Call("get_forecast", {"days": 3})]}, "missing_required_argument"),
        ({"gold_calls": [Call("get_forecast", {"city": "Oslo", "unit": "C"})]}, "unknown_argument"),
        ({"gold_calls": []}, "no_call_mismatch"),
        ({"spec": Spec("weather", "single_turn", 0, 2)}, "no_call_mismatch"),
    ],
)
def test_every_reject_rule(changes, reason):
    assert verify(sound_task(**changes))[0] == reason


def test_top_level_required_is_enforced():
    task = sound_task(tools=[weather_tool(required=("city", "days")), hotel_tool()],
                      gold_calls=[Call("get_forecast", {"city": "Oslo"})])
    assert verify(task)[0] == "missing_required_argument"


def test_no_call_task_passes_with_matching_spec():
    task = sound_task(question="Please order me a large pizza with extra cheese tonight.", gold_calls=[],
                      spec=Spec("weather", "single_turn", 0, 2))
    assert verify(task) is None


def test_verify_candidates_keeps_every_reject_with_its_text():
    good = completion_of(sound_task())
    texts = [good, "garbage", good.replace('"get_forecast", "arguments"', '"get_weather", "arguments"')]
    specs = [Spec("weather", "single_turn", 1, 2)] * 3
    tasks, rejections = verify_candidates(texts, specs)
    assert len(tasks) == 1 and tasks[0].spec == specs[0]
    assert [(r.stage, r.reason) for r in rejections] == [("parse", "missing_blocks"), ("verify", "unknown_tool")]
    assert rejections[0].text == "garbage" and rejections[1].task.gold_calls[0].name == "get_weather"


def test_fingerprint_ignores_digits_case_and_spacing_but_not_structure():
    a = sound_task()
    b = sound_task(question="WHAT will the weather be in   Oslo over the next 5 days?")
    assert fingerprint(a) == fingerprint(b)
    c = sound_task(gold_calls=[Call("get_forecast", {"city": "Oslo"})])
    assert fingerprint(a) != fingerprint(c)
    d = sound_task(tools=[hotel_tool(), weather_tool()])  # menu order does not matter
    assert fingerprint(a) == fingerprint(d)


def test_deduplicate_keeps_the_best_scored():
    tasks = [sound_task(scores={"generator_reward": s}, id=str(i)) for i, s in enumerate([1.0, 2.5, 2.0])]
    other = sound_task(question="Book a hotel room in Oslo for the conference, please.",
                       gold_calls=[Call("book_hotel", {"city": "Oslo"})], id="other")
    kept, dropped = deduplicate(tasks + [other])
    assert [t.id for t in kept] == ["1", "other"]
    assert sorted(r.task.id for r in dropped) == ["0", "2"] and {r.reason for r in dropped} == {"duplicate"}


def _answer(names):
    return "<think>t</think><tool_call_answer>" + json.dumps([{"name": n, "arguments": {}} for n in names]) + "</tool_call_answer>"


def test_agreement_filter():
    task = sound_task()
    agree, other = _answer(["get_forecast"]), _answer(["book_hotel"])
    kept, dropped = agreement_filter([task], [[agree, agree] + [other] * 8])
    assert kept == [task] and task.scores["agreement"] == 0.2
    kept, dropped = agreement_filter([task], [[agree] + [other] * 9 + ["junk"]])
    assert kept == [] and dropped[0].reason == "solver_disagrees"
    order = sound_task(gold_calls=[Call("get_forecast", {"city": "Oslo"}), Call("book_hotel", {"city": "Oslo"})])
    kept, _ = agreement_filter([order], [[_answer(["book_hotel", "get_forecast"])] * 10])
    assert kept == []  # the gold tools must be named in order
    no_call = sound_task(gold_calls=[])
    kept, _ = agreement_filter([no_call], [[_answer([])] * 2])
    assert kept == [no_call]


def test_grounding_filter_drops_gold_values_the_question_never_names():
    grounded = sound_task(id="a")  # get_forecast(city="Oslo", days=3) for "... in Oslo over the next 3 days?"
    words = sound_task(id="b", question="What will the weather be in Oslo over the next three days?")
    invented = sound_task(id="c", gold_calls=[Call("get_forecast", {"city": "Bergen", "days": 3})])
    no_call = sound_task(id="d", gold_calls=[])
    kept, dropped = grounding_filter([grounded, words, invented, no_call])
    assert [t.id for t in kept] == ["a", "b", "d"]  # a number written as a word is grounded; no call, nothing to check
    assert [(r.id, r.stage, r.reason) for r in dropped] == [("c", "grounding", "ungrounded_value")]
    assert "get_forecast.city = 'Bergen'" in dropped[0].detail and dropped[0].task is invented


def _labelled(domain, difficulty, i):
    return sound_task(spec=Spec(domain, "single_turn", 1, 2), difficulty=difficulty, id=f"{domain}-{difficulty}-{i}")


def test_curriculum_mix_and_domain_balance():
    tasks = [_labelled(d, lab, i) for d in ("a", "b") for lab in ("easy", "medium", "hard") for i in range(20)]
    chosen = curriculum_select(tasks, 20, seed=3)
    assert Counter(t.difficulty for t in chosen) == {"easy": 4, "medium": 10, "hard": 6}
    assert Counter(t.spec.domain for t in chosen) == {"a": 10, "b": 10}
    assert len({t.id for t in chosen}) == 20
    assert curriculum_select(tasks, 20, seed=3) == chosen


def test_curriculum_pads_shortfalls_and_defaults_to_medium():
    tasks = [_labelled("a", "easy", i) for i in range(10)] + [_labelled("a", None, i) for i in range(3)]
    chosen = curriculum_select(tasks, 10, seed=0)
    assert len(chosen) == 10 and len({t.id for t in chosen}) == 10
    assert sum(t.difficulty is None for t in chosen) == 3  # unlabelled tasks filled the medium quota
    assert len(curriculum_select(tasks, 50)) == 13  # cannot pick more than there is
    assert curriculum_select([], 5) == []


def test_verify_and_deduplicate_accounts_for_every_candidate():
    good = completion_of(sound_task())
    again = good.replace("next 3 days", "next 7 days")  # a duplicate up to digits
    other = completion_of(sound_task(question="Book a hotel room in Oslo for the big conference, please.",
                                     gold_calls=[Call("book_hotel", {"city": "Oslo"})]))
    texts = [good, "no tags", again, other]
    kept, rejected = verify_and_deduplicate(texts, [Spec("weather", "single_turn", 1, 2)] * 4)
    assert [t.question for t in kept] == [sound_task().question, "Book a hotel room in Oslo for the big conference, please."]
    assert sorted(r.reason for r in rejected) == ["duplicate", "missing_blocks"]
    assert isinstance(check_candidate(good, Spec("weather", "single_turn", 1, 2)), Task)


def test_twin_steps_put_each_twin_in_its_tasks_step_and_every_task_in_each_pass():
    tasks = with_no_call_twins([sound_task(id=f"t{i}") for i in range(3)]) + [sound_task(id=f"s{i}") for i in range(3)]
    twin_at = {i: tasks.index(next(t for t in tasks if t.id == f"{tasks[i].id}-twin"))
               for i in range(len(tasks)) if tasks[i].id.startswith("t") and not tasks[i].id.endswith("twin")}  # fmt: skip
    order = twin_steps(tasks, 40, seed=3)
    assert len(order) == 40
    paired = set(twin_at) | set(twin_at.values())
    for k in range(0, 40, 2):  # a step of two prompts (or of four: two of these) holds a pair whole
        step = order[k : k + 2]
        assert step in [[task, twin] for task, twin in twin_at.items()] or not set(step) & paired
    passes = [order[k : k + 10] for k in (0, 10)]  # 3 pairs + 3 singles and the odd one out again: 10 a pass
    assert all(set(p) == set(range(len(tasks))) for p in passes) and passes[0] != passes[1]
    assert twin_steps(tasks, 40, seed=3) == order and twin_steps(tasks, 40, seed=4) != order
    assert twin_steps([], 4, seed=0) == [] and twin_steps(tasks[:1], 4, seed=0) == [0, 0, 0, 0]


def test_a_no_call_twin_is_its_task_without_the_gold_tools_unless_the_solver_reached_for_a_tool_left():
    two_calls = sound_task(question="Forecast for Oslo, then book a hotel there.", tools=[weather_tool(), hotel_tool(),
                           _tool(name="get_time")], gold_calls=[Call("get_forecast", {"city": "Oslo"}),
                           Call("book_hotel", {"city": "Oslo"})], spec=Spec("travel", "single_turn", 2, 3))  # fmt: skip
    gold_only = sound_task(tools=[weather_tool()], spec=Spec("weather", "single_turn", 1, 1))
    no_call = sound_task(gold_calls=[], spec=Spec("weather", "single_turn", 0, 2))
    tasks = [sound_task(), two_calls, gold_only, no_call]
    for i, task in enumerate(tasks):
        task.id, task.difficulty = f"iter_01-{i:05d}", "hard"
    out = with_no_call_twins(tasks)
    assert [t.id for t in out] == ["iter_01-00000", "iter_01-00000-twin", "iter_01-00001", "iter_01-00001-twin",
                                   "iter_01-00002", "iter_01-00003"]  # fmt: skip
    twin, twin2 = out[1], out[3]
    assert (twin.question, [t.name for t in twin.tools], twin.gold_calls) == (sound_task().question, ["book_hotel"], [])
    assert [t.name for t in twin2.tools] == ["get_time"] and twin2.gold_calls == []
    assert twin.spec == Spec("weather", "single_turn", 0, 1) and twin.difficulty == "hard"
    assert verify(twin) is None and verify(twin2) is None  # a sound no-call task
    assert [t.name for t in out[0].tools] == ["get_forecast", "book_hotel"] and out[0].gold_calls  # the task as it was

    def answer(task):  # the Solver naming the gold tools only
        return "<tool_call_answer>" + completion_of(task).split("<tool_call_answer>")[1]

    reached = '<tool_call_answer>[{"name": "get_time", "arguments": {}}]</tool_call_answer>'
    answers = {"iter_01-00000": [answer(tasks[0]), "no answer"], "iter_01-00001": [answer(two_calls), reached]}
    assert [t.id for t in with_no_call_twins(tasks, answers)] == ["iter_01-00000", "iter_01-00000-twin",
                                                                  "iter_01-00001", "iter_01-00002", "iter_01-00003"]  # fmt: skip
