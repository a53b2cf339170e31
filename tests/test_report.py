"""The report a user reads: rendered from a tiny run's records, with its evaluation table when there is one."""

import json
from dataclasses import asdict

import pytest

from toolr0_lite.cli import main
from toolr0_lite.records import Spec
from toolr0_lite.report import render_report
from toolr0_lite.rundir import read_jsonl
from toolr0_lite.selfplay import run_selfplay
from toolr0_lite.selfplay_config import load_config


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "run"
    run_selfplay(load_config("tiny", out=str(out)), log=lambda _: None)
    return out


def test_report_renders_every_section_from_the_records(tiny_run):
    path = render_report(tiny_run)
    text = path.read_text()
    synthesis = next(m for m in read_jsonl(tiny_run / "metrics.jsonl") if m.get("phase") == "synthesis")
    row = next(line for line in text.splitlines() if line.startswith("| 0 | "))
    assert row.split(" | ")[1:3] == [str(synthesis["candidates"]), str(synthesis["verified_unique"])]
    for heading in ("## Synthesis per iteration", "## Generator reward terms", "## Example tasks, iteration 0"):
        assert heading in text
    assert "Evaluation" not in text  # no eval/ yet
    assert (tiny_run / "report.png").stat().st_size > 0 and (tiny_run / "curriculum.png").stat().st_size > 0


def test_report_shows_examples_by_difficulty_and_the_eval_table(tiny_run, tmp_path):
    tasks = [json.loads(line) for line in (tiny_run / "iter_00" / "tasks.jsonl").read_text().splitlines()]
    tasks[0].update(difficulty="hard", id="iter_00-00001", spec=asdict(Spec("travel", "single_turn", 1, 2)))
    (tiny_run / "iter_00" / "tasks.jsonl").write_text("".join(json.dumps(t) + "\n" for t in tasks))
    summary = {"settings": {}, "limit": 7, "variants": {"base": {"bfcl": {"categories": {"irrelevance": {
        "n": 1, "correct": 1, "accuracy": 1.0, "errors": {}}}, "aggregates": {"irrelevance": 1.0}}}}}
    (tiny_run / "eval").mkdir(exist_ok=True)
    (tiny_run / "eval" / "summary.json").write_text(json.dumps(summary))
    text = render_report(tiny_run).read_text()
    assert "*hard*" in text and tasks[0]["question"] in text
    assert "## Evaluation" in text and "irrelevance" in text and "100.0% (n=1)" in text


def test_report_of_a_folder_that_is_not_a_run(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        render_report(tmp_path)
    assert main(["report", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err
