"""Lenient parsing of Generator and Solver outputs. Model output is untrusted data: nothing here raises on it.

Both roles answer in tagged blocks. The JSON inside a block is read leniently (docs/METHOD.md §4): code fences
are stripped, then it is tried as JSON, as a Python literal (`ast.literal_eval`, which evaluates no code),
and as JSON after None/True/False are fixed; content holding a "..." placeholder is refused.
Every failure comes back as a short reason instead of an exception, so it can be scored 0 and kept.
"""

from __future__ import annotations

import ast
import json
import re
import warnings
from dataclasses import dataclass, field
from typing import Any

from toolr0_lite.records import Call, Task, Tool

GENERATOR_TAGS = ("think", "question", "available_tools", "tool_call_answer")

_FENCE = re.compile(r"^\s*```[a-zA-Z]*\s*\n?(.*?)\n?\s*```\s*$", re.DOTALL)
_PY_CONSTANTS = re.compile(r"\b(None|True|False)\b")
_JSON_CONSTANTS = {"None": "null", "True": "true", "False": "false"}


class _Unparsed:
    """Marks content that did not parse (None is a valid JSON value, so it cannot mark failure)."""


UNPARSED = _Unparsed()


def extract_tag(text: str, tag: str) -> str | None:
    """The stripped content of the first `<tag>…</tag>` block, or None when the block is absent.

    >>> extract_tag("<think> hm </think><question>Hi?</question>", "question")
    'Hi?'
    """
    start = text.find(f"<{tag}>")
    if start < 0:
        return None
    start += len(tag) + 2
    end = text.find(f"</{tag}>", start)
    return text[start:end].strip() if end >= 0 else None


def parse_lenient(content: str) -> Any:
    """JSON-ish text to a Python value, or `UNPARSED`.

    >>> parse_lenient("```json\\n[{'name': 'f', 'arguments': {'x': None}}]\\n```")
    [{'name': 'f', 'arguments': {'x': None}}]
    >>> parse_lenient('[{"name": "f", "arguments": {"a": ...}}]') is UNPARSED
    True
    """
    fenced = _FENCE.match(content)
    if fenced:
        content = fenced.group(1)
    content = content.strip()
    if not content or "..." in content or "…" in content:
        return UNPARSED
    for attempt in (_strict_json, _python_literal, _json_after_constant_fix):
        try:
            return attempt(content)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            continue
    return UNPARSED


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON value")


_STRICT_DECODER = json.JSONDecoder(parse_constant=_reject_constant)  # built once: refuses NaN and Infinity


def _strict_json(content: str) -> Any:
    return _STRICT_DECODER.decode(content)


def _python_literal(content: str) -> Any:
    # literal_eval evaluates no code; the JSON round trip turns tuples into lists and refuses sets, bytes, NaN.
    # Compiling odd model output makes Python warn ("invalid decimal literal", "invalid escape sequence"):
    # it is untrusted text, parsed quietly.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        value = ast.literal_eval(content)
    return _strict_json(json.dumps(value, allow_nan=False))


def _json_after_constant_fix(content: str) -> Any:
    return _strict_json(_PY_CONSTANTS.sub(lambda m: _JSON_CONSTANTS[m.group(1)], content))


def to_calls(value: Any) -> list[Call] | str:
    """A parsed value to a list of calls, or a reason it is not one.

    Accepts a single call object too, and OpenAI-style arguments given as a JSON string.
    """
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        return "calls are not a JSON list"
    calls = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"].strip():
            return "a call has no name"
        arguments = item.get("arguments", item.get("parameters", {}))
        if isinstance(arguments, str):
            arguments = parse_lenient(arguments) if arguments.strip() else {}
        if not isinstance(arguments, dict) or not all(isinstance(k, str) for k in arguments):
            return f"arguments of {item['name']!r} are not an object"
        calls.append(Call(item["name"].strip(), arguments))
    return calls


def to_tool(obj: Any) -> Tool | str:
    """A parsed tool object to a `Tool`, or a reason it is not one.

    Reads both the paper's flat form ``{"parameters": {p: {...}}, "required": [...]}`` and JSON-Schema
    form ``{"parameters": {"type": "object", "properties": {...}, "required": [...]}}``, and takes
    `required` from both places (the released code read only one, which made its check vacuous).
    """
    if isinstance(obj, dict) and isinstance(obj.get("function"), dict):
        obj = obj["function"]  # OpenAI-style {"type": "function", "function": {...}}
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        return "a tool has no name"
    params = obj.get("parameters", {})
    if not isinstance(params, dict):
        return f"parameters of {obj['name']!r} are not an object"
    required = _string_list(obj.get("required"))
    if isinstance(params.get("properties"), dict):
        required += _string_list(params.get("required"))
        params = params["properties"]
    elif isinstance(params.get("required"), list):
        required += _string_list(params["required"])
        params = {k: v for k, v in params.items() if k != "required"}
    description = obj.get("description", "")
    return Tool(
        name=obj["name"].strip(),
        description=description if isinstance(description, str) else "",
        parameters=params,
        required=list(dict.fromkeys(required)),
    )


def _string_list(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


@dataclass
class GeneratorOutput:
    """What could be read from one Generator completion; the reward and the pipeline both start here."""

    question: str | None = None
    tools: list[Tool] | None = None
    gold_calls: list[Call] | None = None
    missing_tags: list[str] = field(default_factory=list)  # of the four tags, those absent or empty
    error: str | None = None  # first reason this is not a complete task; None when it is
    reason: str | None = None  # the same as a code: "missing_blocks", "invalid_json" or "bad_structure"

    def to_task(self) -> Task | None:
        if self.error is not None:
            return None
        return Task(question=self.question, tools=self.tools, gold_calls=self.gold_calls)


def parse_generator_output(text: str) -> GeneratorOutput:
    """Read `<question>`, `<available_tools>` and `<tool_call_answer>` from a Generator completion."""
    blocks = {tag: extract_tag(text, tag) for tag in GENERATOR_TAGS}
    out = GeneratorOutput(missing_tags=[t for t, b in blocks.items() if not b])
    out.question = blocks["question"] or None
    # A task needs no <think> to be usable; the format reward still asks for it.
    errors = [("missing_blocks", f"missing or empty <{t}>") for t in out.missing_tags if t != "think"]

    if blocks["available_tools"]:
        value = parse_lenient(blocks["available_tools"])
        if value is UNPARSED:
            errors.append(("invalid_json", "<available_tools> is not valid JSON"))
        elif not isinstance(value, list) or not value:
            errors.append(("bad_structure", "<available_tools> is not a non-empty list"))
        else:
            tools = [to_tool(t) for t in value]
            bad = next((t for t in tools if isinstance(t, str)), None)
            if bad is None:
                out.tools = tools
            else:
                errors.append(("bad_structure", bad))

    if blocks["tool_call_answer"]:
        value = parse_lenient(blocks["tool_call_answer"])
        if value is UNPARSED:
            errors.append(("invalid_json", "<tool_call_answer> is not valid JSON"))
        elif isinstance(calls := to_calls(value), str):
            errors.append(("bad_structure", calls))
        else:
            out.gold_calls = calls
    if errors:
        out.reason, out.error = errors[0]
    return out


@dataclass
class SolverOutput:
    """What could be read from one Solver completion."""

    think: str | None = None
    answer: str | None = None  # the raw `<tool_call_answer>` content
    calls: list[Call] | None = None  # None when the answer does not parse
    error: str | None = None


def parse_solver_output(text: str) -> SolverOutput:
    """Read `<think>` and the `<tool_call_answer>` calls from a Solver completion.

    >>> parse_solver_output('<think>x</think><tool_call_answer>[]</tool_call_answer>').calls
    []
    """
    out = SolverOutput(think=extract_tag(text, "think"), answer=extract_tag(text, "tool_call_answer"))
    if not out.answer:
        out.error = "missing or empty <tool_call_answer>"
        return out
    value = parse_lenient(out.answer)
    calls = "<tool_call_answer> is not valid JSON" if value is UNPARSED else to_calls(value)
    if isinstance(calls, str):
        out.error = calls
    else:
        out.calls = calls
    return out
