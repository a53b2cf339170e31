"""Evaluation end to end on the tiny model (BFCL subset + held-out tasks, base vs trained, resume), and its pure parts."""

import json
import types

import pytest
from helpers import sound_task

from toolr0_lite.cli import main
from toolr0_lite.config import ConfigError
from toolr0_lite.evaluate import EvalConfig, evaluate_run, heldout_record, summarize, table
from toolr0_lite.models import ModelConfig, RoleModel
from toolr0_lite.prompts import solver_completion
from toolr0_lite.records import Call, Spec
from toolr0_lite.rundir import RunDir, read_jsonl
from toolr0_lite.selfplay import run_selfplay, set_aside_heldout
from toolr0_lite.selfplay_config import load_config

HELD_OUT = [sound_task(id="h-0"),
            sound_task(id="h-1", question="Please repaint my garage door red.", gold_calls=[],
                       spec=Spec("weather", "single_turn", 0, 2))]  # fmt: skip


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "run"
    run_selfplay(load_config("tiny", out=str(out)), log=lambda _: None)
    run = RunDir(out)
    (out / "heldout.jsonl").write_text("".join(t.to_json() + "\n" for t in HELD_OUT))
    run.commit()  # as synthesis would have: committed records survive a reopened run
    return out


def test_heldout_record_scores_with_the_solver_reward_and_exact_match():
    task = HELD_OUT[0]
    right = heldout_record(task, solver_completion(task, "forecast"))
    assert (right["reward"], right["exact_match"], right["no_call"]) == (2.0, True, False)
    wrong = heldout_record(task, '<tool_call_answer>[{"name": "get_forecast", "arguments": {"city": "Rome"}}]</tool_call_answer>')
    assert wrong["exact_match"] is False and 0 < wrong["reward"] < 2
    prose = heldout_record(HELD_OUT[1], "I cannot repaint doors.")
    assert (prose["reward"], prose["exact_match"], prose["calls"]) == (0.0, False, None)


def test_heldout_records_keep_the_think_gate_apart_from_the_calls():
    """r_S pays accuracy only after a <think>: the same right calls without one score 1.0, not 2.0; the records
    and the summary say which it was (the share that reasoned first, and the calls' accuracy without the gate)."""
    task = HELD_OUT[0]
    reasoned = heldout_record(task, solver_completion(task, "forecast"))
    bare = heldout_record(task, solver_completion(task).replace("<think>  </think>", ""))
    half = heldout_record(task, '<think> x </think><tool_call_answer>[{"name": "get_forecast", "arguments": {}}]'
                                '</tool_call_answer>')  # fmt: skip
    assert (reasoned["reward"], reasoned["thought"], reasoned["call_accuracy"]) == (2.0, True, 1.0)
    assert (bare["reward"], bare["thought"], bare["call_accuracy"], bare["exact_match"]) == (1.0, False, 1.0, True)
    assert half["thought"] and 0 < half["call_accuracy"] < 1
    held = summarize([{"benchmark": "heldout", **r} for r in (reasoned, bare, half)])["heldout"]
    assert held["think_share"] == pytest.approx(2 / 3)
    assert held["call_accuracy"] == pytest.approx((2 + half["call_accuracy"]) / 3)
    assert "held-out answers with <think>" in table({"base": {"heldout": held}})
    older = summarize([{k: v for k, v in r.items() if k not in ("thought", "call_accuracy")} for r in (reasoned, bare)])
    assert "think_share" not in older["heldout"] and "call_accuracy" not in older["heldout"]  # records from before


def test_summary_and_table_from_records():
    records = [
        {"benchmark": "bfcl", "category": "simple_python", "valid": True, "error_type": ""},
        {"benchmark": "bfcl", "category": "simple_python", "valid": False, "error_type": "ast_decoder:decoder_failed"},
        {"benchmark": "bfcl", "category": "irrelevance", "valid": True, "error_type": ""},
        {"benchmark": "heldout", "no_call": True, "reward": 2.0, "exact_match": True},
        {"benchmark": "heldout", "no_call": False, "reward": 0.5, "exact_match": False},
    ]  # fmt: skip
    s = summarize(records)
    assert s["bfcl"]["categories"]["simple_python"] == {"n": 2, "correct": 1, "accuracy": 0.5,
                                                        "errors": {"ast_decoder:decoder_failed": 1}}  # fmt: skip
    assert s["bfcl"]["aggregates"] == {"non_live_simple": 0.5, "non_live_overall": 0.5, "irrelevance": 1.0,
                                       "overall": 0.75}  # the mean of the parts that ran: non-live and irrelevance
    assert s["heldout"] == {"n": 2, "reward": 1.25, "exact_match": 0.5, "no_call_n": 1, "no_call_accuracy": 1.0}
    text = table({"base": s, "trained": s})
    assert "simple_python" in text and " 50.0% (n=2)" in text and "held-out no-call accuracy" in text


@pytest.mark.bfcl
def test_eval_of_a_tiny_run_writes_every_record_and_resumes(tiny_run):
    logs = []
    summaries = evaluate_run(tiny_run, EvalConfig(limit=7, base=True), log=logs.append)
    out = tiny_run / "eval"
    results = read_jsonl(out / "results.jsonl")
    assert len(results) == 2 * (7 + len(HELD_OUT))  # base and trained, 1 item per category + held-out tasks
    assert {r["variant"] for r in results} == {"base", "trained"}
    for variant in ("base", "trained"):  # the held-out tasks first: a run stopped inside BFCL still has them
        order = [r["benchmark"] for r in results if r["variant"] == variant]
        assert order == ["heldout"] * len(HELD_OUT) + ["bfcl"] * 7
    assert all({"id", "raw", "calls", "benchmark"} <= set(r) for r in results)
    assert all("valid" in r and "error_type" in r for r in results if r["benchmark"] == "bfcl")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["variants"]["trained"]["bfcl"]["categories"]["irrelevance"]["n"] == 1
    assert summary["variants"]["base"]["heldout"]["n"] == 2 and summaries == summary["variants"]
    assert (out / "bfcl.png").stat().st_size > 0
    assert "simple_python" in logs[0] and "held-out mean r_S" in logs[0]

    before = (out / "results.jsonl").read_text()
    evaluate_run(tiny_run, EvalConfig(limit=7, base=True), log=logs.append)
    assert (out / "results.jsonl").read_text() == before  # nothing answered twice
    RunDir(tiny_run)  # reopening the run directory leaves its eval/ records alone
    assert (out / "results.jsonl").read_text() == before


@pytest.mark.bfcl
def test_an_interrupted_eval_resumes_from_its_committed_answers(tiny_run, tmp_path):
    out = tmp_path / "eval"
    config = EvalConfig(categories=["simple_python", "irrelevance"], limit=4, chunk=1)
    evaluate_run(tiny_run, config, out=out, log=lambda _: None)
    full = read_jsonl(out / "results.jsonl")
    lines = (out / "results.jsonl").read_text().splitlines(keepends=True)
    state = json.loads((out / "state.json").read_text())
    state["lines"]["results.jsonl"] = 2  # as if killed after two answers, mid-write of the third
    (out / "state.json").write_text(json.dumps(state))
    (out / "results.jsonl").write_text("".join(lines[:2]) + lines[2][:10])
    evaluate_run(tiny_run, config, out=out, log=lambda _: None)
    again = read_jsonl(out / "results.jsonl")
    assert again == full  # the same prompts (each item's worked example by its place in the set), the same answers


def test_eval_settings_changes_are_refused(tiny_run, tmp_path):
    out = tmp_path / "eval"
    evaluate_run(tiny_run, EvalConfig(categories=[], max_new_tokens=8), out=out, log=lambda _: None)
    with pytest.raises(ConfigError, match="other settings .*: max_new_tokens: 8 → 9; use another --out"):
        evaluate_run(tiny_run, EvalConfig(categories=[], max_new_tokens=9), out=out, log=lambda _: None)
    settings = json.loads((out / "settings.json").read_text())
    dtype = str(load_config(path=tiny_run / "config.yaml").model.torch_dtype()).removeprefix("torch.")
    assert settings["dtype"] == dtype  # float32, or bfloat16 on a processor with it: the answers' dtype is recorded
    (out / "settings.json").write_text(json.dumps({**settings, "dtype": "float16"}))
    with pytest.raises(ConfigError, match=f"dtype: float16 → {dtype}"):  # answers of other weights are not mixed in
        evaluate_run(tiny_run, EvalConfig(categories=[], max_new_tokens=8), out=out, log=lambda _: None)
    del settings["dtype"]  # a folder made before the dtype was recorded still resumes, and keeps its settings
    (out / "settings.json").write_text(json.dumps(settings))
    evaluate_run(tiny_run, EvalConfig(categories=[], max_new_tokens=8), out=out, log=lambda _: None)
    assert json.loads((out / "settings.json").read_text()) == settings


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"categories": ["live_simpel"]}, "not BFCL categories"), ({"limit": 0}, "limit"), ({"max_new_tokens": 0}, "max_new_tokens"),
     ({"prompt": "leaderboard"}, "prompt: 'leaderboard'; use kit or bfcl"),
     ({"example_pair": True, "exemplars": False}, "example_pair: the prompt shows no solved example"),
     ({"example_pair": True, "example_last": "first"}, "example_last: 'first'; use alternate, call, no_call"),
     ({"example_last": "call"}, "example_last: it orders a pair of examples; add --example-pair")],
)  # fmt: skip
def test_bad_eval_settings(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        EvalConfig(**kwargs)


def test_not_a_run_directory(tmp_path):
    with pytest.raises(ConfigError, match="not a run directory"):
        evaluate_run(tmp_path, EvalConfig())


def test_cli_eval_with_a_model_and_a_task_file(tmp_path, capsys):
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("".join(t.to_json() + "\n" for t in HELD_OUT))
    code = main(["eval", "--model", "tiny", "--categories", "none", "--tasks", str(tasks), "--out", str(tmp_path / "e"),
                 "--max-new-tokens", "8"])  # fmt: skip
    assert code == 0
    assert "held-out exact match" in capsys.readouterr().out
    assert [r["variant"] for r in read_jsonl(tmp_path / "e" / "results.jsonl")] == ["base", "base"]
    assert main(["eval", "--model", "tiny", "--tasks", str(tmp_path / "missing.jsonl")]) == 2


def test_nothing_to_score_is_one_line_before_any_model_loads(tiny_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(RoleModel, "load", lambda *a, **k: pytest.fail("a model loaded with nothing to score"))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    for args in ([str(tiny_run), "--tasks", str(empty)], ["--model", "tiny"], ["--model", "tiny", "--tasks", str(empty)]):
        assert main(["eval", *args, "--categories", "none", "--out", str(tmp_path / "e")]) == 2
        assert "nothing to score; give --tasks FILE" in capsys.readouterr().err
    assert not (tmp_path / "e").exists()


def test_set_aside_heldout_is_seeded_disjoint_and_at_most_half(tmp_path):
    run = RunDir(tmp_path)
    tasks = [sound_task(id=f"t{i}", gold_calls=[Call("get_forecast", {"city": "Oslo", "days": i})]) for i in range(10)]
    rest = set_aside_heldout(tasks, 3, seed=0, run=run)
    held = [t["id"] for t in read_jsonl(run.path("heldout.jsonl"))]
    assert len(held) == 3 and len(rest) == 7 and not set(held) & {t.id for t in rest}
    assert set_aside_heldout(tasks, 3, seed=0, run=run) == rest  # same seed, same split
    assert len(set_aside_heldout(tasks[:5], 16, seed=0, run=run)) == 3  # never more than half held out


def test_base_variant_is_the_base_model(tmp_path):
    """'base' = the Solver slot at initialisation (LoRA B = 0): identical logits to the model without the adapter."""
    import torch

    roles = RoleModel.load(ModelConfig(source="tiny", lora_r=4))
    ids = torch.tensor([[1, 2, 3, 4]])
    with roles.active("solver"), torch.no_grad():
        with_slot = roles.model(input_ids=ids).logits
        with roles.model.disable_adapter():
            without = roles.model(input_ids=ids).logits
    assert torch.equal(with_slot, without)


def test_missing_bfcl_fails_before_any_model_loads_with_the_install_line(monkeypatch):
    import importlib.util

    from toolr0_lite import evaluate

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "bfcl_eval" else real(name, *a))
    monkeypatch.setattr(evaluate.RoleModel, "load", lambda *_: pytest.fail("a model was loaded"))
    with pytest.raises(ConfigError, match=r"pip install --no-deps bfcl-eval==2026\.3\.23"):
        evaluate.evaluate_model("tiny", EvalConfig(limit=7), out="unused")


@pytest.mark.bfcl
@pytest.mark.parametrize("prompt", ["kit", "bfcl"])
def test_both_prompt_modes_and_the_live_categories_end_to_end(tmp_path, capsys, prompt):
    code = main(["eval", "--model", "tiny", "--categories", "live", "simple_python", "irrelevance", "--prompt", prompt,
                 "--limit", "8", "--max-new-tokens", "8", "--out", str(tmp_path)])  # fmt: skip
    assert code == 0
    results = read_jsonl(tmp_path / "results.jsonl")
    assert {r["category"] for r in results} == {"live_simple", "live_multiple", "live_parallel", "live_parallel_multiple",
                                                 "live_irrelevance", "live_relevance", "simple_python", "irrelevance"}  # fmt: skip
    assert all(isinstance(r["valid"], bool) and (r["valid"] or r["error_type"]) for r in results)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["settings"]["prompt"] == prompt
    aggregates = summary["variants"]["base"]["bfcl"]["aggregates"]
    assert {"live_overall", "irrelevance", "relevance", "overall"} <= set(aggregates)
    assert summary["variants"]["base"]["bfcl"]["not_run"] == ["multi_turn", "web_search", "memory", "format_sensitivity"]
    out = capsys.readouterr().out
    assert "BFCL live_overall" in out and "BFCL overall" in out


def test_eval_help_lists_categories_and_prompt_modes(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "live_parallel_multiple" in text and "simple_javascript" in text and "{kit,bfcl}" in text


def test_a_misspelt_category_fails_before_any_model_loads(capsys, monkeypatch):
    monkeypatch.setattr(RoleModel, "load", lambda *a: pytest.fail("a model was loaded"))
    assert main(["eval", "--model", "tiny", "--categories", "live_simpel"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "live_simpel" in err and "live_simple" in err


def test_cli_eval_hands_its_batch_size_to_the_model(tmp_path, monkeypatch):
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(HELD_OUT[0].to_json() + "\n")
    loaded, load = [], RoleModel.load
    monkeypatch.setattr(RoleModel, "load", lambda config: loaded.append(config) or load(config))
    args = ["eval", "--model", "tiny", "--categories", "none", "--tasks", str(tasks), "--out", str(tmp_path / "e"),
            "--max-new-tokens", "8", "--max-batch-tokens"]  # fmt: skip
    assert main(args + ["4096"]) == 0 and loaded[0].max_batch_tokens == 4096
    assert main(args + ["0"]) == 2 and len(loaded) == 1  # refused before any model loads


def test_a_resumed_item_is_asked_with_the_prompt_an_uninterrupted_eval_gives_it(tmp_path, monkeypatch):
    from toolr0_lite import evaluate

    asked = []

    def fake_generate(roles, role, prompts, **_):
        asked.extend(prompts)
        return [[types.SimpleNamespace(text="<tool_call_answer>[]</tool_call_answer>")] for _ in prompts]

    monkeypatch.setattr(evaluate, "generate_shared", fake_generate)
    tasks = [sound_task(id=f"t{i}", question=f"What will the weather be in Oslo in {i} days?") for i in range(5)]
    config = EvalConfig(categories=[], chunk=2)  # exemplars on: each prompt's worked example depends on its place
    evaluate._answer(None, RunDir(tmp_path / "whole"), "base", "heldout", tasks, heldout_record, config, "")
    whole, asked[:] = list(asked), []
    resumed = RunDir(tmp_path / "resumed")
    evaluate._answer(None, resumed, "base", "heldout", tasks[:3], heldout_record, config, "")  # stopped after 3
    evaluate._answer(None, resumed, "base", "heldout", tasks, heldout_record, config, "")
    assert asked[3:] == whole[3:] and len(whole) == 5
    assert len({m[1]["content"] for m in whole}) > 1  # the worked examples do differ by place


def test_a_twin_is_asked_with_its_tasks_worked_examples_as_in_training(tmp_path, monkeypatch):
    """Scoring a Solver on its own training tasks (a tasks.jsonl with no-call twins) asks each twin with the
    examples its task was shown, as the Solver phase did: the two prompts differ in the tool menu alone."""
    from toolr0_lite import evaluate, selfplay
    from toolr0_lite.pipeline import example_places, with_no_call_twins
    from toolr0_lite.selfplay_config import load_config

    asked = []
    monkeypatch.setattr(evaluate, "generate_shared", lambda roles, role, prompts, **_: asked.extend(prompts) or [
        [types.SimpleNamespace(text="<tool_call_answer>[]</tool_call_answer>")] for _ in prompts])
    tasks = [sound_task(id="iter_00-00000"), *with_no_call_twins([sound_task(id="iter_00-00001")])]
    config = EvalConfig(categories=[], example_pair=True)
    evaluate._answer(None, RunDir(tmp_path), "base", "heldout", tasks, heldout_record, config, "")
    run = load_config("tiny", solver_example_pair=True)
    assert asked == [selfplay.solver_prompt(run, t, p) for t, p in zip(tasks, example_places(tasks))]
    assert asked[2][:-1] == asked[1][:-1] and asked[2][-1] != asked[1][-1]  # the menu, in the last turn


def test_the_think_prefill_begins_kit_prompt_answers_only(monkeypatch):
    """A Solver trained with its answers begun as `<think>` is asked the same way in the kit's prompt; BFCL's own
    prompting mode stays the leaderboard's."""
    from toolr0_lite import evaluate
    from toolr0_lite.bfcl import BfclItem

    function = {"name": "add", "description": "Add two integers.", "parameters": {"type": "dict", "properties": {
        "a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]}}  # fmt: skip
    request = [{"role": "user", "content": "What is 2 + 2?"}]
    item = BfclItem("simple_python_0", "simple_python", "What is 2 + 2?", [function], [function], None, request)
    monkeypatch.setattr(evaluate, "bfcl_messages", lambda item: item.messages)  # BFCL's prompt, without bfcl-eval
    task, on, off = sound_task(), EvalConfig(think_prefill=True), EvalConfig()
    assert evaluate.prompt_of(task, "heldout", on, 0)[-1] == {"role": "assistant", "content": "<think>"}
    assert evaluate.prompt_of(task, "heldout", on, 0)[:-1] == evaluate.prompt_of(task, "heldout", off, 0)
    assert evaluate.prompt_of(item, "bfcl", on, 0)[-1] == {"role": "assistant", "content": "<think>"}
    assert evaluate.prompt_of(item, "bfcl", EvalConfig(think_prefill=True, prompt="bfcl"), 0) == request
