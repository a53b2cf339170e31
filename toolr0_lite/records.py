"""The records that flow through self-play: a task spec, a tool schema, a call, a task, a rejection.

Every record is a dataclass that round-trips through one JSON line without loss, so a run directory
is plain JSONL that `datasets.load_dataset("json", ...)` or `jsonlines` can open.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Spec:
    """What the Generator is asked for: a domain, a context type, a menu size and a number of gold calls.

    `num_calls == 0` is a no-call task: none of the tools can serve the request, the gold list is empty.
    """

    domain: str
    context_type: str  # "single_turn" or "multi_turn"
    num_calls: int
    tool_menu_size: int

    @property
    def no_call(self) -> bool:
        return self.num_calls == 0


@dataclass(slots=True)
class Tool:
    """One tool schema on a task's menu. `parameters` maps an argument name to {"type", "description"}."""

    name: str
    description: str
    parameters: dict[str, Any]
    required: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Call:
    """One tool call: a tool name and its arguments."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Task:
    """A tool-calling task: the user's request, the tool menu and the gold calls that answer it."""

    question: str
    tools: list[Tool]
    gold_calls: list[Call]
    spec: Spec | None = None
    scores: dict[str, float] = field(default_factory=dict)  # generator reward terms, p_hat, agreement, ...
    difficulty: str | None = None  # "easy" / "medium" / "hard", from the Solver as judge
    id: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Task:
        return cls(
            question=d["question"],
            tools=[Tool(**t) for t in d["tools"]],
            gold_calls=[Call(**c) for c in d["gold_calls"]],
            spec=Spec(**d["spec"]) if d.get("spec") else None,
            scores=dict(d.get("scores", {})),
            difficulty=d.get("difficulty"),
            id=d.get("id", ""),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_json(cls, line: str) -> Task:
        return cls.from_dict(json.loads(line))


@dataclass(slots=True)
class Rejection:
    """A candidate that did not become a training task, kept with why: nothing generated is lost.

    `reason` is a short machine-readable code (e.g. "unknown_tool"), `detail` a sentence for people.
    `task` is set when the candidate parsed, `text` holds the raw model output when there is one.
    """

    stage: str  # "parse", "verify", "dedup", "grounding", "agreement"
    reason: str
    detail: str = ""
    task: Task | None = None
    text: str | None = None
    id: str = ""  # the candidate's id, as in candidates.jsonl ("iter_00-00012")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["task"] = self.task.to_dict() if self.task else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Rejection:
        task = Task.from_dict(d["task"]) if d.get("task") else None
        return cls(d["stage"], d["reason"], d.get("detail", ""), task, d.get("text"), d.get("id", ""))
