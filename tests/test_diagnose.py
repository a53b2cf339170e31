"""benchmarks/diagnose_probes.py: each Solver answer's reason for missing an exact solve."""

import json
import sys
from pathlib import Path

import pytest
from helpers import completion_of, sound_task

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
from diagnose_probes import (  # noqa: E402
    by_example_kind,
    closed_at_end,
    copies_exemplar,
    decline_advantages,
    declines_report,
    heldout_answers,
    heldout_report,
    menu_effect,
    menu_reading,
    miss_reason,
    paired_change,
    probed,
    readable_change,
    report,
    twin_declines,
    twins_report,
    ungrounded,
)

from toolr0_lite.config import ConfigError  # noqa: E402
from toolr0_lite.evaluate import heldout_record  # noqa: E402
from toolr0_lite.pipeline import with_no_call_twins  # noqa: E402
from toolr0_lite.prompts import EXEMPLARS  # noqa: E402
from toolr0_lite.records import Call  # noqa: E402
from toolr0_lite.rewards import accuracy_reward, solver_reward  # noqa: E402

GOLD = sound_task().gold_calls  # get_forecast(city="Oslo", days=3)


def answer(calls: str) -> str:
    return f"<think>forecast</think><tool_call_answer>{calls}</tool_call_answer>"


@pytest.mark.parametrize("text, reason", [
    (answer('[{"name": "get_forecast", "arguments": {"city": "Oslo", "days": 3}}]'), "solved"),
    (answer('[{"name": "get_forecast", "arguments": {"city": "Oslo", "days": "3"}}]'), "solved"),
    ("I would call the forecast tool.", "no_answer_block"),
    ('<think>forecast</think><tool_call_answer>[{"name": "get_forecast", "arguments": {"city": "Oslo", "days": 3}}]',
     "unclosed_block"),
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


def test_a_folder_without_heldout_answers_is_refused_in_one_line(tmp_path):
    (tmp_path / "results.jsonl").write_text(json.dumps({"benchmark": "bfcl", "id": "simple_python_1", "raw": ""}) + "\n")
    for folder in (tmp_path, tmp_path / "seed_0"):  # answers of another benchmark only; no results.jsonl at all
        with pytest.raises(ConfigError, match="no held-out answers to these tasks"):
            heldout_answers([sound_task(id="hand-01")], folder)


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
    assert "unclosed blocks read as closed: 0 answers unreadable (against 0), mean r_S" in out
    # every answer reasoned first, so r_S's accuracy part is the calls' accuracy: 1 (right) + 0 (no call) + Oslo for Bergen
    part = (1.0 + 0.0 + accuracy_reward([Call("get_forecast", {"city": "Oslo", "days": 3})], unground.gold_calls)) / 3
    assert (f"r_S's accuracy part {part:.3f}, paid only after a <think>: 3 of 3 answers reasoned first; "
            f"the calls' accuracy without that gate {part:.3f}") in out
    assert "hand-written: 1 tasks, mean r_S 2.000; solved 1; a worked example's reasoning copied in 0" in out
    assert "generated: 1 tasks, mean r_S 0.600; no_call_on_a_call_task 1; a worked example's reasoning copied in 1" in out
    assert "generated, ungrounded gold: 1 tasks, mean r_S 1.500; value_wrong 1" in out
    assert copies_exemplar(f"<think>{EXEMPLARS[3][1].upper()}</think>") and not copies_exemplar(answer("[]"))


CALL = '[{"name": "get_forecast", "arguments": {"city": "Oslo", "days": 3}}]'
WRONG = '[{"name": "get_forecast", "arguments": {"city": "Paris", "days": 3}}]'  # r_S 1.75, calls' accuracy 0.75


def test_menu_reading_counts_declines_by_kind_and_declines_every_no_call_task_for_its_ceiling():
    call, no_call, declined_call = sound_task(id="c"), sound_task(id="n", gold_calls=[]), sound_task(id="d")
    scored = [heldout_record(call, answer(CALL)), heldout_record(no_call, answer(CALL)),
              heldout_record(declined_call, answer("[]"))]  # fmt: skip
    mean = sum(r["reward"] for r in scored) / 3
    # only the no-call task's answer is replaced, by a decline, which its own reward scores
    ceiling = (scored[0]["reward"] + solver_reward(answer("[]"), []) + scored[2]["reward"]) / 3
    assert ceiling > mean
    assert menu_reading(scored) == (f"declined 0 of 1 no-call tasks and 1 of 2 call tasks; every no-call task "
                                    f"declined, the other answers kept: r_S {ceiling:.3f} ({ceiling - mean:+.3f})")


def test_paired_change_task_by_task_with_and_without_the_think_gate():
    tasks = {k: sound_task(id=k) for k in "abcde"}
    before = {"a": f"<tool_call_answer>{CALL}</tool_call_answer>", "b": answer(CALL), "c": answer(WRONG), "d": ""}
    after = {"a": answer(CALL), "b": answer(CALL), "c": answer(CALL), "e": ""}
    before, after = ({k: {"raw": v} for k, v in rows.items()} for rows in (before, after))
    # a: the same call, now after a <think> (r_S 1.0 → 2.0, calls' accuracy 1.0 both); b: unchanged;
    # c: Paris → Oslo (r_S 1.75 → 2.0, accuracy 0.75 → 1.0); d and e are not in both.
    # r_S deltas (1, 0, 0.25): mean 0.417, SE 0.300; accuracy deltas (0, 0, 0.25): mean 0.083, SE 0.083
    assert paired_change(before, after, tasks) == (
        "over 3 tasks: r_S +0.417 ± 0.300 (SE), 2 up, 0 down (call tasks +0.417, no-call tasks +0.000); calls' "
        "accuracy without the gate +0.083 ± 0.083 (SE), 1 up, 0 down; exact 2 → 3")
    assert paired_change(before, {"a": after["a"]}, tasks) == "fewer than 2 tasks in common"


def test_paired_change_splits_the_r_S_change_into_call_and_no_call_tasks():
    tasks = {"a": sound_task(id="a"), "n": sound_task(id="n", gold_calls=[])}
    before = {"a": {"raw": answer(WRONG)}, "n": {"raw": answer(CALL)}}  # a wrong call; a call on a no-call task
    after = {"a": {"raw": answer(CALL)}, "n": {"raw": answer("[]")}}  # the right call; the decline
    gold = [{"name": "get_forecast", "arguments": {"city": "Oslo", "days": 3}}]
    calls = (solver_reward(answer(CALL), gold) - solver_reward(answer(WRONG), gold)) / 2
    no_call = (solver_reward(answer("[]"), []) - solver_reward(answer(CALL), [])) / 2
    assert calls > 0 and no_call > calls
    assert f"(call tasks {calls:+.3f}, no-call tasks {no_call:+.3f})" in paired_change(before, after, tasks)


def test_the_calls_compared_only_where_both_answers_are_readable():
    """An answer that learned to close its block gains calls' accuracy without better calls: kept apart."""
    tasks = {k: sound_task(id=k) for k in "abc"}
    unclosed = f"<think>x</think><tool_call_answer>{CALL}"  # the 0.5B model's habit without an example
    before = {"a": {"raw": unclosed}, "b": {"raw": answer(WRONG)}, "c": {"raw": answer(CALL)}}
    after = {"a": {"raw": answer(CALL)}, "b": {"raw": answer(CALL)}, "c": {"raw": answer(WRONG)}}
    assert "+0.333" in paired_change(before, after, tasks)  # a (0 → 1), b (+0.25), c (-0.25), all in the paired change
    assert readable_change(before, after, tasks) == (
        "on the 2 tasks answered readably both times, calls' accuracy +0.000 ± 0.250 (SE), 1 up, 1 down")
    assert readable_change(before, {"a": after["a"]}, tasks) == "fewer than 2 tasks answered readably both times"
    assert readable_change(before, after, tasks, closed_at_end) == (  # a's unclosed block read: its call was right
        "on the 3 tasks answered readably both times, calls' accuracy +0.000 ± 0.144 (SE), 1 up, 1 down")


def test_an_unclosed_block_is_closed_at_the_end_and_nothing_else_changes():
    assert closed_at_end(f"<think>x</think><tool_call_answer>{CALL}") == f"<think>x</think><tool_call_answer>{CALL}</tool_call_answer>"
    for text in (answer(CALL), "no block at all", f"<think>x</think>{CALL}</tool_call_answer>"):
        assert closed_at_end(text) == text


def test_heldout_answers_split_by_the_worked_example_they_were_shown(tmp_path, capsys):
    # A weather task is shown the exemplars of other domains in turn: finance and food_ordering (calls), then
    # travel and iot (no call); so tasks 0-1 of the held-out file saw a call example, tasks 2-3 a no-call one.
    tasks = [sound_task(id=f"generated-{i}") for i in range(4)]
    before = {t.id: {"id": t.id, "raw": answer(WRONG), "reward": 1.75, "exact_match": False} for t in tasks}
    after = {"generated-0": {"raw": answer(CALL), "reward": 2.0, "exact_match": True},
             "generated-1": {"raw": answer(WRONG), "reward": 1.75, "exact_match": False},
             "generated-2": {"raw": answer("[]"), "reward": 0.6, "exact_match": False},
             "generated-3": {"raw": answer("[]"), "reward": 0.6, "exact_match": False}}  # fmt: skip
    by_example_kind(tasks, after, (tmp_path, before))
    assert capsys.readouterr().out.splitlines() == [
        "  shown a call example: 2 tasks (0 no-call), mean r_S 1.875, answered no call 0; over 2 tasks: "
        "r_S +0.125 ± 0.125 (SE), 1 up, 0 down (call tasks +0.125, no-call tasks +0.000); calls' accuracy without "
        "the gate +0.125 ± 0.125 (SE), 1 up, 0 down; exact 0 → 1",
        "  shown a no-call example: 2 tasks (0 no-call), mean r_S 0.600, answered no call 2; over 2 tasks: "
        "r_S -1.150 ± 0.000 (SE), 0 up, 2 down (call tasks -1.150, no-call tasks +0.000); calls' accuracy without "
        "the gate -0.750 ± 0.000 (SE), 0 up, 2 down; exact 0 → 0"]
    (tmp_path / "results.jsonl").write_text("".join(json.dumps({"benchmark": "heldout", **r}) + "\n"
                                                    for r in before.values()))  # fmt: skip
    for order, calls_last in (("alternate", 2), ("call", 4), ("no_call", 0)):  # a pair, in the order evaluated
        (tmp_path / "settings.json").write_text(json.dumps({"exemplars": True, "example_pair": True, "example_last": order}))
        heldout_report(tasks, tmp_path, heldout_answers(tasks, tmp_path))
        lines = [x for x in capsys.readouterr().out.splitlines() if "shown a call example last" in x]
        assert (lines[0].split(": ")[1].split(" tasks")[0] if lines else "0") == str(calls_last)
    twinned = [tasks[0], *with_no_call_twins([sound_task(id="generated-1")]), tasks[3]]  # the twin in place 2
    by_example_kind(twinned, {t.id: {"raw": answer("[]"), "reward": 0.6} for t in twinned})
    shown = [x.split(": ")[1].split(", mean")[0] for x in capsys.readouterr().out.splitlines()]
    assert shown == ["3 tasks (1 no-call)", "1 tasks (0 no-call)"]  # the twin was shown its task's call example
    for shown in (True, False):  # the split is printed only for evaluations whose prompts showed an example
        (tmp_path / "settings.json").write_text(json.dumps({"exemplars": shown}))
        heldout_report(tasks, tmp_path, heldout_answers(tasks, tmp_path))
        assert ("shown a no-call example" in capsys.readouterr().out) == shown


def test_declines_of_each_task_and_its_twin_by_half_of_the_steps(tmp_path, capsys):
    plain = sound_task(id="iter_00-00001", tools=[sound_task().tools[0]])  # its menu is its gold tool: no twin
    task = sound_task(id="iter_00-00002")
    tasks = with_no_call_twins([plain, task])  # plain, task, task's twin
    call, decline = answer('[{"name": "get_forecast", "arguments": {"city": "Oslo", "days": 3}}]'), answer("[]")
    rollouts = [{"step": s, "task": i, "text": t} for s, i, t in [
        (0, 1, call), (0, 1, decline), (1, 2, decline), (1, 2, decline), (2, 0, decline),
        (2, 1, call), (2, 1, call), (3, 2, decline), (3, 2, call)]]  # fmt: skip
    pairs = twin_declines(tasks, rollouts)
    assert pairs == [{"task": "iter_00-00002", "tools": ["get_forecast"], "task_first": (1, 2), "task_second": (0, 2),
                      "twin_first": (2, 2), "twin_second": (1, 2)}]  # fmt: skip
    assert menu_effect(pairs) == 3 / 4 - 1 / 4 and menu_effect([]) is None
    folder = tmp_path / "run" / "iter_00"
    folder.mkdir(parents=True)
    (folder / "tasks.jsonl").write_text("".join(json.dumps(t.to_dict()) + "\n" for t in tasks))
    (folder / "solver_rollouts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rollouts))
    twins_report(tmp_path / "run")
    out = capsys.readouterr().out
    assert "tasks declined 50%, twins 100%: the menu's effect +50%" in out
    assert "tasks declined 0%, twins 50%: the menu's effect +50%" in out


def test_declining_answers_by_kind_with_the_advantage_grpo_gave_them(tmp_path, capsys):
    task = sound_task(id="iter_00-00001")
    tasks = [*with_no_call_twins([task]), sound_task(id="iter_00-00002", gold_calls=[])]  # task, twin, no-call task
    call, decline = answer('[{"name": "get_forecast", "arguments": {"city": "Oslo", "days": 3}}]'), answer("[]")
    rows = [{"step": s, "task": i, "text": t, "reward": r} for s, i, t, r in [
        (0, 0, call, 1.6), (0, 0, decline, 0.6), (0, 1, decline, 2.0), (0, 1, decline, 2.0),
        (1, 1, decline, 2.0), (1, 1, call, 0.0), (1, 2, decline, 2.0), (1, 2, call, 0.0)]]  # fmt: skip
    # Each prompt its own group of 2: a decline beside a call is pushed by ±0.5 / std (std 0.707) or ±1 / 1.414;
    # the twin's two declines of step 0 alike: no spread, no advantage.
    kinds = decline_advantages(tasks, rows, group_size=2)
    assert {k: (v["answers"], v["declined"], v["declined_without_spread"]) for k, v in kinds.items()} == {
        "call": (2, 1, 0), "twin": (4, 3, 2), "no_call": (2, 1, 0)}
    assert kinds["call"]["advantage"] == pytest.approx(-0.5 / (0.5 ** 0.5 + 1e-4))
    assert kinds["twin"]["advantage"] == pytest.approx(1 / (2 ** 0.5 + 1e-4))
    assert kinds["no_call"]["advantage"] == pytest.approx(1 / (2 ** 0.5 + 1e-4))
    # A task and its twin one group of 4 (solver_twin_group): step 0's rewards 1.6, 0.6, 2.0, 2.0 (mean 1.55), so the
    # twin's declines now have a gradient and the task's decline is pushed down harder; the no-call task alone.
    paired = decline_advantages(tasks, rows, group_size=2, pair_groups=True)
    std = ((0.05 ** 2 + 0.95 ** 2 + 2 * 0.45 ** 2) / 3) ** 0.5
    assert paired["call"]["advantage"] == pytest.approx(-0.95 / (std + 1e-4))
    assert paired["twin"]["declined_without_spread"] == 0
    assert paired["twin"]["advantage"] == pytest.approx(2 * 0.45 / (std + 1e-4) + 1 / (2 ** 0.5 + 1e-4))
    assert decline_advantages(tasks, [{k: v for k, v in r.items() if k != "task"} for r in rows], 2)["call"] == {
        "answers": 0, "declined": 0, "declined_without_spread": 0, "advantage": 0.0}  # older runs: no task index
    run = tmp_path / "run"
    (run / "iter_00").mkdir(parents=True)
    (run / "config.yaml").write_text("solver: {group_size: 2}\n")
    (run / "iter_00" / "tasks.jsonl").write_text("".join(json.dumps(t.to_dict()) + "\n" for t in tasks))
    (run / "iter_00" / "solver_rollouts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    declines_report(run)
    out = capsys.readouterr().out
    assert "twin: 3 of 4 answers declined, 2 of them in groups without spread; their summed advantage +0.71" in out
    assert "all kinds: summed advantage of declining +0.71: the phase pushed declining up" in out


def test_probe_answers_are_read_per_iteration_with_their_declines(tmp_path, capsys):
    """Each iteration's agreement answers come from that iteration's Solver: one table each, with the declines."""
    call, decline = answer('[{"name": "get_forecast", "arguments": {"city": "Oslo", "days": 3}}]'), answer("[]")
    tasks = [sound_task(), sound_task(question="Is there a tool to cook dinner for me tonight?", gold_calls=[])]
    for name, answers in (("iter_00", [[call, decline], [decline, call]]), ("iter_01", [[call, call], [call, call]])):
        folder = tmp_path / "run" / name
        folder.mkdir(parents=True)
        (folder / "candidates.jsonl").write_text("".join(
            json.dumps({"index": i, "text": completion_of(t)}) + "\n" for i, t in enumerate(tasks)))
        (folder / "probes.jsonl").write_text("".join(
            json.dumps({"task_id": f"{name}-{i:05d}", "agreement_answers": a}) + "\n" for i, a in enumerate(answers)))
    found = probed(tmp_path / "run")
    assert [(where, len(t.gold_calls)) for where, t, _ in found] == [
        ("iter_00 agreement", 1), ("iter_00 agreement", 0), ("iter_01 agreement", 1), ("iter_01 agreement", 0)]
    report(found)
    first, second = capsys.readouterr().out.split("## iter_01 agreement")
    assert "## iter_00 agreement: 2 tasks, 4 answers" in first
    assert "answers that declined, no-call tasks: 1 of 2" in first and "declined, call tasks: 1 of 2" in first
    assert "calls_on_a_no_call_task: 2 (50%)" in second and "declined, no-call tasks: 0 of 2" in second
    (tmp_path / "run" / "config.yaml").write_text("synthesis: {agreement_by: base}\n")
    assert {where for where, _, _ in probed(tmp_path / "run")} == {"iter_00 agreement (base model)",
                                                                   "iter_01 agreement (base model)"}
    report([])
    assert capsys.readouterr().out == "## nothing probed\n"
