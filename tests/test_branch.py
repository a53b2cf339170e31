"""A branch of a run after one of its phases: the run its settings would have made, on the source's own tasks."""

import json
import shutil

import pytest
from test_continue import files
from test_selfplay import _records

from toolr0_lite.cli import main as cli
from toolr0_lite.rundir import read_state
from toolr0_lite.selfplay import run_selfplay
from toolr0_lite.selfplay_config import load_config


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    out = tmp_path_factory.mktemp("source") / "run"
    run_selfplay(load_config("tiny", out=str(out)), log=lambda _: None)
    return out


def test_a_branch_after_synthesis_is_the_run_its_solver_settings_make(source, tmp_path, capsys):
    before = files(source)
    branch = tmp_path / "branch"
    assert cli(["branch", str(source), "iter_00/synthesis", "--out", str(branch), "--set", "solver.steps=3"]) == 0
    assert "toolr0-lite run " + str(branch / "config.yaml") in capsys.readouterr().out
    assert json.loads((branch / "branch.json").read_text())["changed"] == {"solver.steps": [2, 3]}
    assert read_state(branch)["done"] == ["iter_00/generator", "iter_00/synthesis"]
    copied = _records(branch)
    assert copied["iter_00/tasks.jsonl"] == _records(source)["iter_00/tasks.jsonl"]
    assert "iter_00/solver_rollouts.jsonl" not in copied and not (branch / "iter_00" / "solver").exists()

    run_selfplay(load_config(path=branch / "config.yaml"), log=lambda _: None)
    straight = tmp_path / "straight"
    run_selfplay(load_config("tiny", out=str(straight), sets=["solver.steps=3"]), log=lambda _: None)
    assert _records(branch) == _records(straight)  # the phases before the Solver's, copied; the Solver's, redone
    rollouts = "iter_00/solver_rollouts.jsonl"  # steps × prompts_per_step × group_size answers
    assert len(_records(branch)[rollouts]) == 3 * 2 * 2 and len(_records(source)[rollouts]) == 2 * 2 * 2
    assert files(source) == before  # the source is only read


def test_a_branch_with_the_sources_settings_repeats_its_records(source, tmp_path):
    branch = tmp_path / "branch"
    assert cli(["branch", str(source), "iter_00/generator", "--out", str(branch)]) == 0
    assert json.loads((branch / "branch.json").read_text())["changed"] == {}
    assert "iter_00/candidates.jsonl" not in _records(branch)  # synthesis is redone
    run_selfplay(load_config(path=branch / "config.yaml"), log=lambda _: None)
    assert _records(branch) == _records(source)


def test_a_branch_named_by_a_relative_path_runs_from_any_folder(source, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli(["branch", str(source), "iter_00/synthesis", "--out", "branch"]) == 0
    monkeypatch.chdir(source)  # elsewhere: the config still names the branch's own folder
    assert load_config(path=tmp_path / "branch" / "config.yaml").out == str(tmp_path / "branch")


@pytest.mark.parametrize("args, message", [
    (["iter_00/probe"], "'iter_00/probe' is not a finished phase of"),
    (["iter_00/synthesis", "--set", "solver.learning_rat=1"], "unknown key(s) learning_rat"),
    (["iter_00/synthesis", "--out", "{tmp}/full"], "exists and is not empty"),
    (["iter_00/synthesis", "--old"], "does not record its files as they were after iter_00/synthesis"),
    (["iter_00/synthesis", "--cut"], "is missing iter_00/tasks.jsonl, iter_00/generator, which the run had after"),
])  # fmt: skip
def test_a_bad_branch_is_one_line_and_writes_nothing(source, tmp_path, capsys, args, message):
    run = source
    if "--old" in args:  # a run made before branches: its state has no line counts per finished phase
        run = shutil.copytree(source, tmp_path / "old")
        state = read_state(run)
        del state["lines_at"]
        (run / "state.json").write_text(json.dumps(state))
    if "--cut" in args:  # a run damaged from outside: a record file and an adapter gone
        run = shutil.copytree(source, tmp_path / "cut")
        (run / "iter_00" / "tasks.jsonl").unlink()
        shutil.rmtree(run / "iter_00" / "generator")
    args = [a for a in args if a not in ("--old", "--cut")]
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    out = ["--out", str(tmp_path / "new")] if "--out" not in args else []
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert cli(["branch", str(run), *args, *out]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not (tmp_path / "new").exists() and files(tmp_path / "full") == {"notes.txt": b"mine"}
