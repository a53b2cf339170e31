"""Why does the frozen Solver miss? Every probe answer of a run, sorted by what kept it from an exact solve.

The frontier reward r_diff lives on p̂, the share of the Solver's K answers that solve a generated task
exactly (docs/METHOD.md §3). When p̂ is 0 everywhere, r_diff carries no signal; this reads a run directory
(no model) and says why: for each answer the first thing that differs from the gold calls —

    unclosed_block (a `<tool_call_answer>` never closed), no_answer_block, unparsable, calls_on_a_no_call_task,
    no_call_on_a_call_task, tools_or_count
    (other tools, or another number of calls), argument_keys, value_spelling (the values differ only in case,
    spacing or punctuation: BFCL's checker, which normalises strings, would accept them), value_wrong

— and, for the tasks, how many have a gold value the request never names (an ungrounded gold call, which no
Solver can be expected to match). It prints p̂'s histogram as measured and as it would be if value_spelling
answers counted as solves, over the Generator-phase probes and the synthesis agreement answers, one table
each per iteration (each probes with that iteration's frozen Solver), with how many answers declined on
no-call and on call tasks: a Solver that never declines fails the agreement check on every no-call task, so
the next curriculum keeps none of the Generator's (RESULTS.md, session 27).

With `--heldout HELDOUT.jsonl`, the folders are evaluations instead (`toolr0-lite eval` or learn_cpu's `base/`,
`seed_N/learning/iter_KK/`) and it reads their held-out answers the same way, one table a folder: per group of
tasks (hand-written; the base Generator's; those of its tasks with an ungrounded gold value) the mean r_S,
the reasons, and how many answers copy a worked example's reasoning word for word; how many no-call and call
tasks were declined, and the score had every no-call task been declined (what reading the menu is worth);
r_S's accuracy part beside the share of answers that reasoned first (r_S pays accuracy only after a `<think>`)
and the calls' accuracy without that gate, so a Solver that learned to write `<think>` is not read as one that calls better;
each folder's r_S and gate-free calls' accuracy against the first's, task by task (mean change ± standard
error, how many went up and down), and the calls' accuracy on the tasks answered readably both times (so
answers that only learned to close their block are not read as better calls), also with every block the model
ended inside read as closed (r_fmt pays nothing for those, however right their calls); and, where the prompts showed a
worked example, the same split by the example's kind (a call or a no-call example), with the no-call answers
each kind drew — a small Solver copies its example's kind (RESULTS.md).

With `--twins`, the run folders' Solver training answers instead: for each call task trained beside its no-call
twin (`synthesis.no_call_twins`: the same request, the gold tools off the menu), how often the Solver declined the
task and how often the twin, in the first and the second half of the phase's steps. The two prompts differ in the
menu alone, so a Solver that reads its menu declines the twin and not the task; the gap between the two rates
is how far its decision follows the menu, and a gap that grows from the first half to the second is GRPO
teaching it.

With `--declines`, the same answers by what GRPO made of declining (`common.decline_advantages`): for call tasks,
twins and other no-call tasks, the answers that declined, those of them in groups without reward spread (no
gradient), and their summed advantage as TRL's groups gave it. The sum over kinds is the way the phase pushed
the Solver's tendency to decline, which it shares across kinds.

    python benchmarks/diagnose_probes.py RUN_DIR [RUN_DIR ...]
    python benchmarks/diagnose_probes.py --heldout RUNS/heldout.jsonl RUNS/base RUNS/seed_0/learning/iter_00
    python benchmarks/diagnose_probes.py --heldout RUNS/seed_0/iter_00/tasks.jsonl RUNS/seed_0/fit/iter_00/before \
        RUNS/seed_0/fit/iter_00/after     # the Solver on its own phase's tasks (learn_cpu's fit), before and after
    python benchmarks/diagnose_probes.py --twins RUNS/seed_0
    python benchmarks/diagnose_probes.py --declines RUNS/seed_0
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Callable

from common import DECLINE_KINDS, decline_advantages, declined_share, menu_effect, twin_declines

from toolr0_lite.config import ConfigError, run_entry_point
from toolr0_lite.evaluate import heldout_record
from toolr0_lite.parsing import parse_generator_output, parse_solver_output
from toolr0_lite.pipeline import example_places
from toolr0_lite.prompts import EXEMPLARS, solver_examples
from toolr0_lite.records import Call, Task
from toolr0_lite.rewards import (
    call_score,
    exact_match,
    normalize,
    solver_reward,
    ungrounded_values,
    values_match,
)
from toolr0_lite.rundir import read_jsonl
from toolr0_lite.selfplay_config import load_config

REASONS = ("solved", "unclosed_block", "no_answer_block", "unparsable", "calls_on_a_no_call_task", "no_call_on_a_call_task",
           "tools_or_count", "argument_keys", "value_spelling", "value_wrong")  # fmt: skip


def miss_reason(answer: str, gold: list[Call]) -> str:
    """The first thing that keeps `answer` from solving a task with these gold calls ("solved" if nothing)."""
    out = parse_solver_output(answer)
    if not out.answer:
        return "unclosed_block" if closed_at_end(answer) != answer else "no_answer_block"
    if out.calls is None:
        return "unparsable"
    if exact_match(out.calls, gold):
        return "solved"
    if not gold:
        return "calls_on_a_no_call_task"
    if not out.calls:
        return "no_call_on_a_call_task"
    if sorted(c.name for c in out.calls) != sorted(c.name for c in gold):
        return "tools_or_count"
    reasons = set()
    for g in gold:
        p = max((c for c in out.calls if c.name == g.name), key=lambda c: call_score(c, g))
        if set(p.arguments) != set(g.arguments):
            reasons.add("argument_keys")
        for key in set(p.arguments) & set(g.arguments):
            a, b = p.arguments[key], g.arguments[key]
            if not values_match(a, b):
                reasons.add("value_spelling" if normalize(str(a)) == normalize(str(b)) else "value_wrong")
    return next(r for r in REASONS if r in reasons)


def closed_at_end(answer: str) -> str:
    """The answer with a `<tool_call_answer>` it never closed closed at the end of its text: how it would read if
    a block the model ended inside counted (the 0.5B model often stops after its call list without the tag)."""
    _, opened, rest = answer.partition("<tool_call_answer>")
    return answer + "</tool_call_answer>" if opened and "</tool_call_answer>" not in rest else answer


def ungrounded(task: Task) -> bool:
    """A gold argument value that no spelling of the request contains."""
    return bool(ungrounded_values(task.question, task.gold_calls))


def probed(root: Path) -> list[tuple[str, Task, list[str]]]:
    """(where, task, the answers) for every probed Generator rollout and every agreement check; `where` names the
    iteration and the phase ("iter_01 agreement"), since each iteration probes with its own Solver, and the base
    model where the run's agreement check asked it (`synthesis.agreement_by: base`)."""
    judge = load_config(path=root / "config.yaml").synthesis.agreement_by if (root / "config.yaml").is_file() else "solver"
    agreement = "agreement" if judge == "solver" else f"agreement ({judge} model)"
    found = []
    for folder in sorted(root.glob("iter_*")):
        for row in read_jsonl(folder / "generator_rollouts.jsonl"):
            if row.get("p_hat") is not None:
                found.append((f"{folder.name} generator phase", row["text"], row["probe_answers"]))
        candidates = {f"{folder.name}-{c['index']:05d}": c["text"] for c in read_jsonl(folder / "candidates.jsonl")}
        found += [(f"{folder.name} {agreement}", candidates[row["task_id"]], row["agreement_answers"])
                  for row in read_jsonl(folder / "probes.jsonl") if row["task_id"] in candidates]  # fmt: skip
    tasks = [(where, parse_generator_output(text).to_task(), answers) for where, text, answers in found]
    return [(where, task, answers) for where, task, answers in tasks if task is not None]


def report(found: list[tuple[str, Task, list[str]]]) -> None:
    if not found:
        print("## nothing probed")
    for where in dict.fromkeys(w for w, _, _ in found):  # each iteration's phases, in the order they ran
        rows = [(t, a) for w, t, a in found if w == where]
        reasons = Counter(miss_reason(answer, t.gold_calls) for t, answers in rows for answer in answers)
        total = sum(reasons.values())
        print(f"## {where}: {len(rows)} tasks, {total} answers")
        for reason in REASONS:
            print(f"  {reason}: {reasons[reason]} ({reasons[reason] / total:.0%})")
        exact, lenient = Counter(), Counter()
        for task, answers in rows:
            why = [miss_reason(a, task.gold_calls) for a in answers]
            exact[round(why.count("solved") / len(why), 3)] += 1
            lenient[round(sum(w in ("solved", "value_spelling") for w in why) / len(why), 3)] += 1
        print(f"  p̂ histogram (tasks): {dict(sorted(exact.items()))}")
        print(f"  p̂ if value_spelling counted as a solve: {dict(sorted(lenient.items()))}")
        bad = sum(ungrounded(t) for t, _ in rows)
        print(f"  tasks with a gold value the request never names: {bad} of {len(rows)}")
        print(f"  no-call tasks: {sum(not t.gold_calls for t, _ in rows)} of {len(rows)}")
        for kind, wanted in (("no-call", False), ("call", True)):
            answers = [a for t, a_s in rows if bool(t.gold_calls) == wanted for a in a_s]
            declined = sum(parse_solver_output(a).calls == [] for a in answers)
            print(f"  answers that declined, {kind} tasks: {declined} of {len(answers)}")


def task_group(task: Task) -> str:
    if task.id.startswith("hand-"):  # common.HAND_WRITTEN
        return "hand-written"
    return "generated, ungrounded gold" if ungrounded(task) else "generated"


def copies_exemplar(answer: str) -> bool:
    """The answer's reasoning is a worked example's, word for word (the Solver prompt shows one)."""
    think = normalize(parse_solver_output(answer).think or "")
    return bool(think) and any(normalize(t) == think for _, t in EXEMPLARS)


def heldout_answers(tasks: list[Task], folder: Path) -> dict[str, dict]:
    """An evaluation folder's held-out records of these tasks, by task id; a folder with none is refused."""
    ids = {t.id for t in tasks}
    answers = {r["id"]: r for r in read_jsonl(folder / "results.jsonl") if r["benchmark"] == "heldout" and r["id"] in ids}
    if not answers:
        raise ConfigError(f"{folder}: no held-out answers to these tasks in its results.jsonl; give an evaluation "
                          "folder (RUNS/base, RUNS/seed_0/learning/iter_00) that answered them")  # fmt: skip
    return answers


def mean_change(deltas: list[float]) -> str:
    """Paired deltas as `mean ± standard error (SE), n up, m down`."""
    mean = sum(deltas) / len(deltas)
    se = (sum((d - mean) ** 2 for d in deltas) / (len(deltas) - 1) / len(deltas)) ** 0.5
    return f"{mean:+.3f} ± {se:.3f} (SE), {sum(d > 1e-9 for d in deltas)} up, {sum(d < -1e-9 for d in deltas)} down"


def paired_change(before: dict[str, dict], after: dict[str, dict], by_id: dict[str, Task]) -> str:
    """`after`'s answers against `before`'s, task by task, each scored from its text as `evaluate` scores it
    today: the mean change of r_S, split into what the call tasks and the no-call tasks add to it, the mean change
    of the calls' accuracy without r_S's `<think>` gate, and the exact solves."""
    common = [k for k in before if k in after]
    if len(common) < 2:
        return "fewer than 2 tasks in common"
    was, now = ({k: heldout_record(by_id[k], rows[k]["raw"]) for k in common} for rows in (before, after))
    change = {name: mean_change([now[k][name] - was[k][name] for k in common]) for name in ("reward", "call_accuracy")}
    part = {kind: sum(now[k]["reward"] - was[k]["reward"] for k in common if was[k]["no_call"] == kind) / len(common)
            for kind in (False, True)}  # fmt: skip
    return (f"over {len(common)} tasks: r_S {change['reward']} (call tasks {part[False]:+.3f}, no-call tasks "
            f"{part[True]:+.3f}); calls' accuracy without the gate {change['call_accuracy']}; exact "
            f"{sum(was[k]['exact_match'] for k in common)} → {sum(now[k]['exact_match'] for k in common)}")


def readable_change(before: dict[str, dict], after: dict[str, dict], by_id: dict[str, Task],
                    read: Callable[[str], str] = str) -> str:  # fmt: skip
    """The calls' accuracy change on the tasks whose answers hold a readable call list both times (a closed
    `<tool_call_answer>` of valid calls): the calls themselves, apart from answers that only became readable.
    `read` turns each answer's text first (e.g. `closed_at_end`)."""
    was = {k: heldout_record(by_id[k], read(before[k]["raw"])) for k in before if k in after}
    now = {k: heldout_record(by_id[k], read(after[k]["raw"])) for k in was}
    both = [k for k in was if was[k]["calls"] is not None and now[k]["calls"] is not None]
    if len(both) < 2:
        return "fewer than 2 tasks answered readably both times"
    deltas = [now[k]["call_accuracy"] - was[k]["call_accuracy"] for k in both]
    return f"on the {len(both)} tasks answered readably both times, calls' accuracy {mean_change(deltas)}"


DECLINE = "<think> No tool on the menu serves this request. </think>\n<tool_call_answer>[]</tool_call_answer>"


def menu_reading(scored: list[dict]) -> str:
    """The decision to call or to decline, which only the menu can settle: how many no-call tasks and how many
    call tasks the answers declined, and the mean r_S had every no-call task been declined, the other answers
    kept. That is the score a Solver would gain by reading its menu on the no-call tasks alone; a Solver whose
    declines rise and fall together on both kinds (RESULTS.md, sessions 22-29) trades one kind for the other."""
    declined = Counter(r["no_call"] for r in scored if r["calls"] == [])
    no_call = sum(r["no_call"] for r in scored)
    mean = sum(r["reward"] for r in scored) / len(scored)
    decline = solver_reward(DECLINE, [])  # what a decline earns on any no-call task
    ceiling = sum(decline if r["no_call"] else r["reward"] for r in scored) / len(scored)
    return (f"declined {declined[True]} of {no_call} no-call tasks and {declined[False]} of {len(scored) - no_call} "
            f"call tasks; every no-call task declined, the other answers kept: r_S {ceiling:.3f} ({ceiling - mean:+.3f})")


def heldout_report(tasks: list[Task], folder: Path, answers: dict[str, dict],
                   reference: tuple[Path, dict[str, dict]] | None = None) -> None:  # fmt: skip
    """One evaluation folder's held-out `answers`, by task group: mean r_S, exact solves and miss reasons; with a
    `reference` (a folder, e.g. the base's, and its answers), the paired change against it."""
    by_id = {t.id: t for t in tasks}
    rows = list(answers.values())
    print(f"## {folder}: {len(rows)} held-out answers")
    if reference is not None:
        print(f"  against {reference[0]}: {paired_change(reference[1], answers, by_id)}")
        print(f"  {readable_change(reference[1], answers, by_id)}")
        print(f"  unclosed blocks read as closed: {readable_change(reference[1], answers, by_id, closed_at_end)}")
    scored = [heldout_record(by_id[r["id"]], r["raw"]) for r in rows]  # as `evaluate` scores them today
    accuracy = sum(r["call_accuracy"] for r in scored if r["thought"])  # r_acc: the calls' accuracy, behind the gate
    print(f"  r_S's accuracy part {accuracy / len(rows):.3f}, paid only after a <think>: "
          f"{sum(r['thought'] for r in scored)} of {len(rows)} answers reasoned first; "
          f"the calls' accuracy without that gate {sum(r['call_accuracy'] for r in scored) / len(rows):.3f}")
    print(f"  {menu_reading(scored)}")
    lenient = [heldout_record(by_id[r["id"]], closed_at_end(r["raw"])) for r in rows]
    print(f"  unclosed blocks read as closed: {sum(r['calls'] is None for r in lenient)} answers unreadable "
          f"(against {sum(r['calls'] is None for r in scored)}), mean r_S {sum(r['reward'] for r in lenient) / len(rows):.3f}, "
          f"the calls' accuracy without the gate {sum(r['call_accuracy'] for r in lenient) / len(rows):.3f}")  # fmt: skip
    for group in ("hand-written", "generated", "generated, ungrounded gold"):
        mine = [r for r in rows if task_group(by_id[r["id"]]) == group]
        if not mine:
            continue
        reasons = Counter(miss_reason(r["raw"], by_id[r["id"]].gold_calls) for r in mine)
        shown = ", ".join(f"{k} {reasons[k]}" for k in REASONS if reasons[k])
        print(f"  {group}: {len(mine)} tasks, mean r_S {sum(r['reward'] for r in mine) / len(mine):.3f}; {shown}; "
              f"a worked example's reasoning copied in {sum(copies_exemplar(r['raw']) for r in mine)}")
    settings = json.loads((folder / "settings.json").read_text()) if (folder / "settings.json").is_file() else {}
    if settings.get("exemplars"):
        by_example_kind(tasks, answers, reference, settings.get("example_pair", False),
                        settings.get("example_last", "alternate"))  # fmt: skip


def by_example_kind(tasks: list[Task], answers: dict[str, dict],
                    reference: tuple[Path, dict[str, dict]] | None = None, pair: bool = False,
                    order: str = "alternate") -> None:  # fmt: skip
    """The held-out answers split by the worked example each prompt showed last (task i of the file is shown
    `solver_examples(task, i, pair, order)`, a no-call twin its task's, as `evaluate` asks): mean r_S, answers
    with no call, the change against `reference`."""
    by_id = {t.id: t for t in tasks}
    last = " last" if pair else ""
    for kind, calls in ((f"a call example{last}", True), (f"a no-call example{last}", False)):
        ids = {t.id for t, i in zip(tasks, example_places(tasks))
               if bool(solver_examples(t, i, pair, order)[-1][0].gold_calls) == calls}  # fmt: skip
        mine = {k: r for k, r in answers.items() if k in ids}
        if not mine:
            continue
        declined = sum(parse_solver_output(r["raw"]).calls == [] for r in mine.values())
        line = (f"  shown {kind}: {len(mine)} tasks ({sum(not t.gold_calls for t in tasks if t.id in mine)} no-call), "
                f"mean r_S {sum(r['reward'] for r in mine.values()) / len(mine):.3f}, answered no call {declined}")
        if reference is not None:
            line += "; " + paired_change({k: r for k, r in reference[1].items() if k in ids}, mine, by_id)
        print(line)


def twins_report(root: Path) -> None:
    """`common.twin_declines` for every iteration of a run, and the menu's effect on declining (`common.menu_effect`)
    in each half of the phase's steps."""
    for folder in sorted(root.glob("iter_*")):
        tasks = [Task.from_dict(d) for d in read_jsonl(folder / "tasks.jsonl")]
        pairs = twin_declines(tasks, read_jsonl(folder / "solver_rollouts.jsonl"))
        if not pairs:
            continue
        print(f"## {root}/{folder.name}: {len(pairs)} call tasks trained beside their no-call twins, answers declined")
        for pair in pairs:
            cells = [f"{who} {half} {pair[f'{who}_{half}'][0]}/{pair[f'{who}_{half}'][1]}"
                     for who in ("task", "twin") for half in ("first", "second")]  # fmt: skip
            print(f"  {pair['task']} ({', '.join(pair['tools'])}): " + ", ".join(cells))
        for half in ("first", "second"):
            effect = menu_effect(pairs, (half,))
            if effect is not None:
                rates = {who: declined_share(pairs, who, (half,)) for who in ("task", "twin")}
                print(f"  {half} half of the steps: tasks declined {rates['task']:.0%}, twins {rates['twin']:.0%}: "
                      f"the menu's effect {effect:+.0%}")


def declines_report(root: Path) -> None:
    """`common.decline_advantages` for every iteration of a run, its groups as the run's config.yaml made them."""
    config = load_config(path=root / "config.yaml")
    for folder in sorted(root.glob("iter_*")):
        if not (folder / "solver_rollouts.jsonl").is_file():
            continue
        tasks = [Task.from_dict(d) for d in read_jsonl(folder / "tasks.jsonl")]
        kinds = decline_advantages(tasks, read_jsonl(folder / "solver_rollouts.jsonl"), config.solver.group_size,
                                   config.solver_twin_group)  # fmt: skip
        grouping = "a task and its twin one group" if config.solver_twin_group else "each prompt its own group"
        print(f"## {root}/{folder.name}: the Solver's declining answers ({grouping})")
        for kind in DECLINE_KINDS:
            k = kinds[kind]
            if k["answers"]:
                print(f"  {kind}: {k['declined']} of {k['answers']} answers declined, {k['declined_without_spread']} "
                      f"of them in groups without spread; their summed advantage {k['advantage']:+.2f}")
        total = sum(k["advantage"] for k in kinds.values())
        print(f"  all kinds: summed advantage of declining {total:+.2f}: the phase pushed declining "
              f"{'up' if total > 0 else 'down' if total < 0 else 'neither way'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders; with --heldout, evaluation folders")
    parser.add_argument("--heldout", type=Path, help="the held-out tasks (JSONL) the evaluation folders answered")
    parser.add_argument("--twins", action="store_true", help="the Solver's training answers to tasks and their twins")
    parser.add_argument("--declines", action="store_true",
                        help="the Solver's declining training answers: how many, and the advantage GRPO gave them")
    args = parser.parse_args()
    if args.twins or args.declines:
        for root in args.runs:
            (twins_report if args.twins else declines_report)(root)
    elif args.heldout:
        tasks = [Task.from_dict(d) for d in read_jsonl(args.heldout)]
        answers = {folder: heldout_answers(tasks, folder) for folder in args.runs}  # every folder checked first
        first = (args.runs[0], answers[args.runs[0]])  # the others' reference
        for folder in args.runs:
            heldout_report(tasks, folder, answers[folder], None if folder == first[0] else first)
    else:
        report([x for root in args.runs for x in probed(root)])


if __name__ == "__main__":
    sys.exit(run_entry_point("diagnose_probes", main))
