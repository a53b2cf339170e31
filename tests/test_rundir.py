"""The run directory keeps finished work and drops the rest on restart."""

from toolr0_lite.rundir import RunDir, atomic_write_text, read_jsonl


def test_restart_cuts_files_back_to_committed_records(tmp_path):
    run = RunDir(tmp_path)
    run.append("iter_00/candidates.jsonl", [{"i": 0}, {"i": 1}])
    run.commit()
    run.append("iter_00/candidates.jsonl", [{"i": 2}])  # an unfinished batch
    with open(tmp_path / "iter_00" / "candidates.jsonl", "a") as f:
        f.write('{"i": 3, "torn')  # a line cut by a kill
    run.append("metrics.jsonl", [{"never": "committed"}])

    again = RunDir(tmp_path)
    assert read_jsonl(tmp_path / "iter_00" / "candidates.jsonl") == [{"i": 0}, {"i": 1}]
    assert read_jsonl(tmp_path / "metrics.jsonl") == []
    assert not again.is_done("iter_00/synthesis")
    again.commit("iter_00/synthesis")
    assert RunDir(tmp_path).is_done("iter_00/synthesis") and RunDir(tmp_path).count("iter_00/candidates.jsonl") == 2


def test_atomic_write_leaves_no_temp_file(tmp_path):
    atomic_write_text(tmp_path / "a" / "tasks.jsonl", '{"x": 1}\n')
    assert (tmp_path / "a" / "tasks.jsonl").read_text() == '{"x": 1}\n'
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["tasks.jsonl"]


def test_a_run_killed_before_its_first_commit_restarts_from_nothing(tmp_path):
    run = RunDir(tmp_path)  # a new run: its state is on disk before any record is
    run.append("metrics.jsonl", [{"never": "committed"}])
    run.append("iter_00/generator_rollouts.jsonl", [{"torn": "batch"}])  # killed here, nothing committed

    again = RunDir(tmp_path)  # not refused as "state.json is missing but … holds records"
    assert again.state["done"] == []
    assert read_jsonl(tmp_path / "metrics.jsonl") == [] and again.count("iter_00/generator_rollouts.jsonl") == 0
