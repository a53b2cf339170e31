"""From candidate tasks to the Solver's training set (docs/METHOD.md §5):
verify → dedup → (grounding, an option) → agreement → curriculum → (no-call twins, an option).

Each stage is a pure function over records. Every candidate that drops out becomes a `Rejection` with a
machine-readable reason, so nothing generated is lost. The frozen Solver's answers and difficulty labels
come in as data: the model is called elsewhere.
"""

from __future__ import annotations

import gc
import hashlib
import json
import random
import re
from collections import defaultdict
from contextlib import contextmanager
from typing import Callable, Iterator, Mapping, Sequence

from toolr0_lite.parsing import parse_generator_output, parse_solver_output
from toolr0_lite.prompts import DIFFICULTIES, is_prompt_echo
from toolr0_lite.records import Rejection, Spec, Task
from toolr0_lite.rewards import ungrounded_values

PRIMITIVE_TYPES = {"string", "integer", "number", "boolean", "date"}
GENERIC_TOOL_NAMES = {"tool", "function", "api", "call"}
TRIVIAL_PHRASES = ("capital of", "tell me a joke")

# ---------------------------------------------------------------- 1. structural verification


def verify(task: Task) -> tuple[str, str] | None:
    """The first structural defect of a parsed task as (reason code, detail), or None when it is sound.

    Rules of docs/METHOD.md §5.2, plus two of this kit: arguments the tool does not define, and a gold list that
    disagrees with a no-call spec.
    """
    q = task.question.strip()
    if is_prompt_echo(q):
        return "prompt_echo", "the question repeats the prompt or an example"
    if len(q) < 25 or any(p in q.casefold() for p in TRIVIAL_PHRASES):
        return "trivial_question", "the question is too short or a stock trivia request"
    if q.casefold().startswith("what is") and len(task.gold_calls) == 1 and len(task.gold_calls[0].arguments) == 1:
        return "trivial_question", "a single one-argument 'what is' lookup"

    seen: set[str] = set()
    for tool in task.tools:
        name = tool.name.strip()
        if sum(ch.isalpha() for ch in name) <= 2 or name.casefold() in GENERIC_TOOL_NAMES:
            return "bad_tool_name", f"tool name {name!r} is empty or generic"
        if name in seen:
            return "duplicate_tool_name", f"two tools are named {name!r}"
        seen.add(name)
        if len(tool.description.strip()) < 5:
            return "short_description", f"tool {name!r} has no real description"
        if not tool.parameters:
            return "empty_parameters", f"tool {name!r} has no parameters"
        for param, schema in tool.parameters.items():
            kind = schema.get("type") if isinstance(schema, dict) else None
            if not isinstance(kind, str) or kind.casefold() not in PRIMITIVE_TYPES:
                return "non_primitive_type", f"{name}.{param} has type {kind!r}, not one of {sorted(PRIMITIVE_TYPES)}"

    menu = {t.name: t for t in task.tools}
    for call in task.gold_calls:
        tool = menu.get(call.name)
        if tool is None:
            return "unknown_tool", f"gold call {call.name!r} is not on the menu"
        for arg, value in call.arguments.items():
            if isinstance(value, (dict, list)):
                return "nested_argument", f"{call.name}.{arg} is nested; arguments must be flat"
            if arg not in tool.parameters:
                return "unknown_argument", f"{call.name} has no parameter {arg!r}"
        missing = [r for r in tool.required if r not in call.arguments]
        if missing:
            return "missing_required_argument", f"{call.name} lacks required {missing}"

    if task.spec is not None and task.spec.no_call != (not task.gold_calls):
        return "no_call_mismatch", "the gold list does not match the spec's number of calls (0 vs. some)"
    return None


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Records hold no reference cycles, so reference counting frees them; pausing the cyclic collector
    while many are built saves its full passes over a growing heap (measured: a third of the time at 100k)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def check_candidate(text: str, spec: Spec, task_id: str = "") -> Task | Rejection:
    """Parse and verify one raw Generator completion: a sound task, or its rejection."""
    out = parse_generator_output(text)
    task = out.to_task()
    if task is None:
        return Rejection("parse", out.reason, out.error, text=text, id=task_id)
    task.spec, task.id = spec, task_id
    defect = verify(task)
    return task if defect is None else Rejection("verify", defect[0], defect[1], task=task, text=text, id=task_id)


def verify_candidates(texts: Sequence[str], specs: Sequence[Spec]) -> tuple[list[Task], list[Rejection]]:
    """Parse and verify raw Generator completions; returns the sound tasks and the rejections."""
    checked = [check_candidate(text, spec) for text, spec in zip(texts, specs, strict=True)]
    return [c for c in checked if isinstance(c, Task)], [c for c in checked if isinstance(c, Rejection)]


# ---------------------------------------------------------------- 2. deduplication

_DIGITS = re.compile(r"\d")


def fingerprint(task: Task) -> str:
    """sha1 of the task's shape: its question (lower case, digits → 0, spaces collapsed), its tools with
    their parameter names (sorted), and its calls in order with their argument names (sorted)."""
    question = " ".join(_DIGITS.sub("0", task.question.lower()).split())
    tools = sorted((t.name, sorted(t.parameters)) for t in task.tools)
    calls = [(c.name, sorted(c.arguments)) for c in task.gold_calls]
    return hashlib.sha1(json.dumps([question, tools, calls]).encode("utf-8")).hexdigest()


def _generator_reward(task: Task) -> float:
    return task.scores.get("generator_reward", 0.0)


def deduplicate(
    tasks: Sequence[Task], score: Callable[[Task], float] = _generator_reward, keys: Sequence[str] | None = None
) -> tuple[list[Task], list[Rejection]]:
    """Keep the best-scored task of each fingerprint (the first on ties), in the original order.

    `keys` are the tasks' fingerprints when the caller already has them.
    """
    keys = keys if keys is not None else [fingerprint(t) for t in tasks]
    best: dict[str, int] = {}
    for i, (key, task) in enumerate(zip(keys, tasks)):
        if key not in best or score(task) > score(tasks[best[key]]):
            best[key] = i
    kept, dropped = [], []
    for i, (key, task) in enumerate(zip(keys, tasks)):
        if best[key] == i:
            kept.append(task)
        else:
            dropped.append(Rejection("dedup", "duplicate", f"same fingerprint as candidate {best[key]}", task=task, id=task.id))
    return kept, dropped


def verify_and_deduplicate(
    texts: Sequence[str], specs: Sequence[Spec], ids: Sequence[str] | None = None,
    rewards: Sequence[float] | None = None,
) -> tuple[list[Task], list[Rejection]]:  # fmt: skip
    """Stages 1 and 2 together, as synthesis runs them: the unique sound tasks and every rejection.

    `ids`, when given, become the tasks' ids (e.g. which candidate each came from); `rewards` are the
    candidates' generator rewards, stored in `task.scores` and used to keep the best of duplicates.
    """
    n = len(texts)
    ids = ids if ids is not None else [""] * n
    rewards = rewards if rewards is not None else [0.0] * n
    tasks, keys, rejections = [], [], []
    with _cyclic_gc_paused():
        for text, spec, task_id, reward in zip(texts, specs, ids, rewards, strict=True):
            checked = check_candidate(text, spec, task_id)
            if isinstance(checked, Task):
                checked.scores["generator_reward"] = reward
                tasks.append(checked)
                keys.append(fingerprint(checked))  # now, while the task is fresh in the cache
            else:
                rejections.append(checked)
        kept, duplicates = deduplicate(tasks, keys=keys)
    return kept, rejections + duplicates


# ---------------------------------------------------------------- 2b. grounding (a kit option)


def grounding_filter(tasks: Sequence[Task]) -> tuple[list[Task], list[Rejection]]:
    """Drop a task whose gold calls hold a value its question never names (`rewards.ungrounded_values`): training on
    it teaches the Solver to invent values. Off in the paper (`synthesis.require_grounded`), whose Generator
    prompt asks for grounded values and whose r_valid rewards them, but whose pipeline keeps the rest."""
    kept, dropped = [], []
    for task in tasks:
        loose = ungrounded_values(task.question, task.gold_calls)
        if loose:
            detail = f"not in the question: {', '.join(loose)}"
            dropped.append(Rejection("grounding", "ungrounded_value", detail, task=task, id=task.id))
        else:
            kept.append(task)
    return kept, dropped


# ---------------------------------------------------------------- 3. Solver agreement


def agreement_filter(
    tasks: Sequence[Task], answers: Sequence[Sequence[str]], min_agree: int = 2
) -> tuple[list[Task], list[Rejection]]:
    """Keep a task when at least `min_agree` of the frozen Solver's answers name the gold tools in order.

    A task nobody can even approach is likely broken; `answers[i]` are the completions for `tasks[i]`.
    The share that agreed is stored as `task.scores["agreement"]`.
    """
    kept, dropped = [], []
    for task, completions in zip(tasks, answers, strict=True):
        gold_names = [c.name for c in task.gold_calls]
        agree = 0
        for completion in completions:
            calls = parse_solver_output(completion).calls
            agree += calls is not None and [c.name for c in calls] == gold_names
        task.scores["agreement"] = agree / len(completions) if completions else 0.0
        if agree >= min_agree:
            kept.append(task)
        else:
            detail = f"{agree} of {len(completions)} Solver answers named the gold tools; {min_agree} needed"
            dropped.append(Rejection("agreement", "solver_disagrees", detail, task=task, id=task.id))
    return kept, dropped


# ---------------------------------------------------------------- 4. curriculum selection


def curriculum_select(
    tasks: Sequence[Task], n: int, mix: tuple[float, float, float] = (0.2, 0.5, 0.3), seed: int = 0
) -> list[Task]:
    """Pick `n` tasks with an easy/medium/hard `mix`, spread evenly over domains, padding shortfalls.

    Labels come from `task.difficulty` (unlabelled counts as medium). Within a label, domains take turns,
    which fills per-domain quotas; when a label runs short, the rest is padded from all remaining tasks.
    """
    rng = random.Random(seed)
    quotas = _split(n, mix)
    pools: dict[str, dict[str, list[Task]]] = {d: defaultdict(list) for d in DIFFICULTIES}
    for task in tasks:
        domain = task.spec.domain if task.spec else ""
        pools[task.difficulty if task.difficulty in DIFFICULTIES else "medium"][domain].append(task)
    for by_domain in pools.values():
        for group in by_domain.values():
            rng.shuffle(group)

    selected = []
    for label, quota in zip(DIFFICULTIES, quotas):
        selected += _round_robin(pools[label], quota, rng)
    leftovers: dict[str, list[Task]] = defaultdict(list)
    for by_domain in pools.values():
        for domain, group in by_domain.items():
            leftovers[domain] += group
    return selected + _round_robin(leftovers, n - len(selected), rng)


def _split(n: int, shares: Sequence[float]) -> list[int]:
    """`n` split by `shares` in whole numbers that add up to `n` (largest remainder)."""
    total = sum(shares)
    exact = [n * s / total for s in shares]
    counts = [int(x) for x in exact]
    for i in sorted(range(len(shares)), key=lambda i: counts[i] - exact[i])[: n - sum(counts)]:
        counts[i] += 1
    return counts


def _round_robin(by_domain: dict[str, list[Task]], k: int, rng: random.Random) -> list[Task]:
    """Take up to `k` tasks, one domain at a time in a shuffled order; takes them out of the pools."""
    domains = sorted(by_domain)
    rng.shuffle(domains)
    taken: list[Task] = []
    while len(taken) < k and any(by_domain[d] for d in domains):
        for domain in domains:
            if by_domain[domain] and len(taken) < k:
                taken.append(by_domain[domain].pop())
    return taken


# ---------------------------------------------------------------- 5. no-call twins (kit, an option)


TWIN = "-twin"  # a no-call twin's id: its task's id and this


def twin_of(task_id: str | None) -> str | None:
    """The id of the task whose no-call twin `task_id` is; None for a task that is no twin.

    >>> twin_of("iter_01-00018-twin"), twin_of("iter_01-00018")
    ('iter_01-00018', None)
    """
    return task_id[: -len(TWIN)] if task_id and task_id.endswith(TWIN) else None


def twin_places(tasks: Sequence[Task]) -> dict[int, int]:
    """Where each no-call twin of `tasks` is → where its task is (twins whose task is not in the list left out).

    >>> twin_places([Task("q", [], [], id="a"), Task("r", [], [], id="b"), Task("q", [], [], id="a-twin")])
    {2: 0}
    """
    place = {t.id: i for i, t in enumerate(tasks) if t.id is not None}
    return {i: place[twin_of(t.id)] for i, t in enumerate(tasks) if twin_of(t.id) in place}


def with_no_call_twins(tasks: Sequence[Task], answers: Mapping[str, Sequence[str]] | None = None) -> list[Task]:
    """Each task followed by its no-call twin: the same request with the gold calls' tools taken off the menu.

    The right answer to the twin is no call (gold `[]`) when what is left cannot serve the request. The
    Generator's other tools are meant as distractors but sometimes could serve it ("get_news" beside the gold
    "search_news"), so a task whose frozen-Solver agreement answers (`answers`, by task id) ever called a tool
    that stays on the menu gets no twin. No-call tasks, and call tasks whose menu holds only their gold tools,
    have none either. A twin's id is its task's with "-twin" added.

    >>> from toolr0_lite.records import Call, Tool
    >>> menu = [Tool("convert_distance", "km to miles", {}), Tool("get_weather", "weather in a city", {})]
    >>> task = Task("Convert 250 km to miles.", menu, [Call("convert_distance", {"km": 250})], id="iter_01-00018")
    >>> [(t.id, [x.name for x in t.tools], len(t.gold_calls)) for t in with_no_call_twins([task])]
    [('iter_01-00018', ['convert_distance', 'get_weather'], 1), ('iter_01-00018-twin', ['get_weather'], 0)]
    >>> reached = '<tool_call_answer>[{"name": "get_weather", "arguments": {}}]</tool_call_answer>'
    >>> len(with_no_call_twins([task], {"iter_01-00018": [reached]}))
    1
    """
    answers = answers or {}
    out = []
    for task in tasks:
        out.append(task)
        used = {c.name for c in task.gold_calls}
        rest = [t for t in task.tools if t.name not in used]
        reached = {c.name for a in answers.get(task.id, ()) for c in parse_solver_output(a).calls or []}
        if used and rest and not reached & {t.name for t in rest}:
            spec = task.spec and Spec(task.spec.domain, task.spec.context_type, 0, len(rest))
            out.append(Task(task.question, rest, [], spec, difficulty=task.difficulty, id=f"{task.id}{TWIN}"))
    return out


def example_places(tasks: Sequence[Task]) -> list[int]:
    """The place whose worked examples each task's Solver prompt shows (`prompts.solver_examples`' index): its own,
    but a no-call twin's is its task's, so that the two prompts differ in the tool menu alone.

    >>> example_places([Task("q", [], [], id="a"), Task("q", [], [], id="a-twin"), Task("r", [], [], id="b")])
    [0, 0, 2]
    """
    seen: dict[str | None, int] = {}
    places = []
    for i, task in enumerate(tasks):
        seen[task.id] = i
        places.append(seen.get(twin_of(task.id), i))
    return places


def twin_steps(tasks: Sequence[Task], count: int, seed: int, lone: bool = False) -> list[int]:
    """`count` task indices (an even count) in the order the Solver's GRPO steps take them, each no-call twin
    right after its task at an odd place: with an even number of prompts a step, a task and its twin share a
    step, so one update sees two prompts that differ in the menu alone. Tasks without a twin go two by two (an
    odd one out beside another of them again), or with `lone` each by itself, twice over (the blocks of a GRPO
    group made of two prompts: `solver_twin_group`); each pass over the tasks has a seeded order of its own.

    >>> tasks = [Task("q", [], [], id="a"), Task("q", [], [], id="a-twin"), Task("r", [], [], id="b")]
    >>> order = twin_steps(tasks, 8, seed=0)
    >>> all(order[k : k + 2] in ([0, 1], [2, 2]) for k in range(0, 8, 2))
    True
    >>> tasks.append(Task("s", [], [], id="c"))
    >>> sorted(map(tuple, zip(*[iter(twin_steps(tasks, 6, seed=0, lone=True))] * 2)))
    [(0, 1), (2, 2), (3, 3)]
    """
    task_of = twin_places(tasks)
    pairs = [[task, twin] for twin, task in task_of.items()]
    singles = [i for i in range(len(tasks)) if i not in task_of and i not in task_of.values()]
    rng, order = random.Random(seed), []
    while tasks and len(order) < count:
        rng.shuffle(singles)
        if lone:
            blocks = pairs + [[i, i] for i in singles]
        else:
            ones = singles + singles[:1] if len(singles) % 2 else singles
            blocks = pairs + [ones[k : k + 2] for k in range(0, len(ones), 2)]
        rng.shuffle(blocks)
        order += [i for block in blocks for i in block]
    return order[:count]
