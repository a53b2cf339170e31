"""Lenient parsing of both roles' outputs, and the record round trip."""

import json

from helpers import completion_of, sound_task

from toolr0_lite.parsing import UNPARSED, parse_generator_output, parse_lenient, parse_solver_output, to_tool
from toolr0_lite.records import Call, Rejection, Task


def test_parse_lenient_fallbacks():
    assert parse_lenient('[{"a": 1}]') == [{"a": 1}]
    assert parse_lenient("[{'a': 1, 'b': None}]") == [{"a": 1, "b": None}]  # Python literal
    assert parse_lenient('[{"a": True, "b": None, "c": "x\\ny"}]') == [{"a": True, "b": None, "c": "x\ny"}]
    assert parse_lenient("```\n{'a': (1, 2)}\n```") == {"a": [1, 2]}  # tuples become lists
    for bad in ("", "[1, 2", "{1, 2}", "__import__('os').system('echo hi')", "[NaN]", "[1, ...]", "b'x'"):
        assert parse_lenient(bad) is UNPARSED, bad


def test_generator_output_parses_to_a_task():
    task = sound_task()
    out = parse_generator_output("Sure!\n" + completion_of(task) + "\nDone.")
    assert out.error is None and out.missing_tags == []
    parsed = out.to_task()
    assert parsed.question == task.question
    assert parsed.tools == task.tools and parsed.gold_calls == task.gold_calls


def test_generator_parse_failures_have_reasons():
    assert parse_generator_output("nothing here").reason == "missing_blocks"
    text = completion_of(sound_task())
    broken = text.replace("<available_tools> [", "<available_tools> [[")
    assert parse_generator_output(broken).reason == "invalid_json"
    nameless = text.split("<available_tools>")[0] + '<available_tools> [{"description": "x"}] </available_tools>'
    out = parse_generator_output(nameless + "<tool_call_answer>[]</tool_call_answer>")
    assert out.reason == "bad_structure" and out.to_task() is None


def test_openai_style_tools_and_string_arguments():
    tool = to_tool({"type": "function", "function": {"name": "f", "description": "does f",
                                                      "parameters": {"type": "object", "properties": {"x": {"type": "string"}},
                                                                     "required": ["x"]}}})
    assert tool.name == "f" and tool.parameters == {"x": {"type": "string"}} and tool.required == ["x"]
    out = parse_solver_output('<think>t</think><tool_call_answer>[{"name": "f", "arguments": "{\\"x\\": \\"1\\"}"}]</tool_call_answer>')
    assert out.calls == [Call("f", {"x": "1"})]


def test_solver_output():
    out = parse_solver_output("<think> hmm </think> <tool_call_answer> {\"name\": \"f\"} </tool_call_answer>")
    assert out.think == "hmm" and out.calls == [Call("f", {})]
    assert parse_solver_output("<tool_call_answer></tool_call_answer>").error == "missing or empty <tool_call_answer>"
    assert parse_solver_output("<tool_call_answer>[1]</tool_call_answer>").calls is None


def test_task_json_round_trip():
    task = sound_task(scores={"generator_reward": 2.5, "p_hat": 0.25}, difficulty="hard", id="it1-0007")
    line = task.to_json()
    assert "\n" not in line
    assert Task.from_json(line) == task


def test_rejection_round_trip():
    rej = Rejection("verify", "unknown_tool", "gold call 'x' is not on the menu", task=sound_task(), text="raw")
    assert Rejection.from_dict(json.loads(json.dumps(rej.to_dict()))) == rej
    bare = Rejection("parse", "missing_blocks", text="raw")
    assert Rejection.from_dict(bare.to_dict()) == bare
