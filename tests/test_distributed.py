"""Several processes: the loop under `torchrun --nproc_per_node 2` on CPU (gloo), tiny model.

tests/distributed_run.py is what each process runs: the CLI, with every Generator completion read as a sound
task (`--sound`, so that probes and agreement have work to split), and an audit hook that fails a rank other
than 0 if it writes anything under the run directory.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil  # comes with accelerate
import pytest
import yaml

from toolr0_lite.config import ConfigError
from toolr0_lite.distributed import check_launch, share
from toolr0_lite.rundir import RunDir, read_jsonl, read_state
from toolr0_lite.selfplay_config import check_processes, load_config

SCRIPT = str(Path(__file__).with_name("distributed_run.py"))
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # two processes on two cores


def launch(out: Path, *sets: str, processes: int = 2, **popen) -> subprocess.Popen:
    command = [*(TORCHRUN if processes == 2 else [sys.executable]), SCRIPT, "--sound", "run", "tiny", "--out", str(out)]
    command += [x for s in sets for x in ("--set", s)]
    return subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


def finish(proc: subprocess.Popen) -> str:
    output, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, output[-3000:]
    return output


def counts(out: Path) -> dict[str, int]:
    """Records per JSONL file and the adapters written: what a run of the same config must match."""
    files = {str(p.relative_to(out)): len(read_jsonl(p)) for p in sorted(out.rglob("*.jsonl"))}
    files["adapters"] = sorted(str(p.parent.relative_to(out)) for p in out.rglob("adapter_model.safetensors"))
    return files


def test_shares_are_contiguous_cover_the_list_and_differ_by_at_most_one():
    for n in range(12):
        for ranks in range(1, 5):
            shares = [share(n, ranks, r) for r in range(ranks)]
            assert [i for s in shares for i in s] == list(range(n))
            assert max(map(len, shares)) - min(map(len, shares)) <= 1


def test_a_step_that_does_not_split_across_processes_is_refused():
    config = load_config("tiny", generator={"prompts_per_step": 1, "group_size": 3})
    check_processes(config, 1)
    check_processes(load_config("tiny"), 2)
    with pytest.raises(ConfigError, match=r"generator.prompts_per_step × generator.group_size = 3 .* 2 processes × 1 accumulation"):
        check_processes(config, 2)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same config run by one process and by two."""
    root = tmp_path_factory.mktemp("distributed")
    one, two = launch(root / "one", processes=1), launch(root / "two")
    return root / "one", finish(one), root / "two", finish(two)


@pytest.mark.processes
def test_two_processes_split_the_generation_and_write_what_one_does(runs):
    one, _, two, output = runs
    assert counts(two) == counts(one)  # same records, none duplicated or missing; rank 1 wrote nothing (exit 0)
    assert counts(two)["iter_00/candidates.jsonl"] == 8 and counts(two)["iter_00/generator_rollouts.jsonl"] == 2 * 2 * 2
    metrics = read_jsonl(two / "metrics.jsonl")
    synthesis = next(m for m in metrics if m["phase"] == "synthesis")
    assert synthesis["candidates_by_rank"] == {"0": 4, "1": 4} and synthesis["verified_unique"] == 8
    probes = [m["probed_by_rank"] for m in metrics if m["phase"] == "generator"]
    assert probes == [{"0": 2, "1": 2}] * 2  # each rank probed its own two completions of each step
    assert {r["rank"] for r in read_jsonl(two / "iter_00" / "generator_rollouts.jsonl")} == {0, 1}
    assert next(m for m in read_jsonl(one / "metrics.jsonl") if m["phase"] == "synthesis")["candidates_by_rank"] == {"0": 8}
    assert output.count("toolr0_lite: done.") == 1  # one console: the main process's


@pytest.mark.processes
def test_a_launch_killed_in_synthesis_resumes_in_one_process(tmp_path, runs):
    _, _, reference, _ = runs
    out = tmp_path / "killed"
    proc = launch(out, "synthesis.batch_size=1")  # eight commits in synthesis
    deadline = time.time() + 300
    while "iter_00/generator" not in _done(out) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    launcher = psutil.Process(proc.pid)
    for p in [launcher, *launcher.children(recursive=True)]:  # the workers too (torchrun starts them in sessions
        p.send_signal(signal.SIGKILL)                          # of their own), as when the job is killed
    proc.communicate()
    assert "iter_00/generator" in _done(out) and "iter_00/solver" not in _done(out)

    finish(launch(out, "synthesis.batch_size=1", processes=1))
    assert counts(out) == counts(reference)
    assert RunDir(out).is_done("iter_00/solver")


@pytest.mark.processes
def test_evaluation_is_split_across_processes_and_written_once(tmp_path, runs):
    one, _, two, _ = runs
    results = {}
    for processes in (1, 2):
        out = tmp_path / f"eval{processes}"
        command = [*(TORCHRUN if processes == 2 else [sys.executable]), SCRIPT, "eval", str(two), "--categories",
                   "none", "--max-new-tokens", "8", "--out", str(out)]  # fmt: skip
        finish(subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        results[processes] = read_jsonl(out / "results.jsonl")
        assert json.loads((out / "summary.json").read_text())["variants"]["trained"]["heldout"]["n"] == 4
    assert sorted(r["id"] for r in results[2]) == sorted(r["id"] for r in results[1])  # each item once
    assert len(results[2]) == len(read_jsonl(two / "heldout.jsonl")) == 4


def _done(out: Path) -> list[str]:
    try:
        return read_state(out).get("done", [])
    except Exception:  # being written this instant
        return []


@pytest.mark.processes
def test_a_misconfigured_launch_fails_in_one_line_before_any_model_loads(tmp_path):
    out = tmp_path / "bad"
    proc = launch(out, "generator.prompts_per_step=1", "generator.group_size=3")
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode != 0
    assert "generator.prompts_per_step × generator.group_size = 3 completions a step cannot be split into 2 processes" in output
    assert not out.exists()


def test_the_run_directory_is_written_by_one_process_at_a_time(tmp_path):
    held = RunDir(tmp_path / "run")  # this process writes it (its lock lasts as long as the RunDir)
    other = subprocess.run([sys.executable, "-c", f"from toolr0_lite.rundir import RunDir; RunDir({str(tmp_path / 'run')!r})"],
                           capture_output=True, text=True)  # fmt: skip
    assert other.returncode != 0 and f"is being written by process {os.getpid()}, still running" in other.stderr
    assert json.loads((tmp_path / "run" / "state.json").read_text())["done"] == [] and held.writer


ACCELERATE = Path(__file__).parents[1] / "recipes" / "accelerate"


@pytest.mark.parametrize("name", ["zero2.yaml", "ddp.yaml"])
def test_the_accelerate_configs_fit_the_paper_preset(name):
    launch_config = yaml.safe_load((ACCELERATE / name).read_text())
    paper = load_config("paper")
    processes = launch_config["num_processes"]
    check_processes(paper, processes)  # a step's batch splits into the GPUs and their accumulation passes
    assert launch_config["mixed_precision"] == "bf16" and paper.model.dtype in ("auto", "bfloat16")
    assert launch_config["use_cpu"] is False and launch_config["num_machines"] == 1
    for phase in (paper.generator, paper.solver):
        assert phase.prompts_per_step * phase.steps == 2000  # the paper's 2,000 prompts a phase, whatever the GPUs
        assert phase.prompts_per_step * phase.group_size // processes // phase.gradient_accumulation_steps == 4
    if launch_config["distributed_type"] == "DEEPSPEED":
        deepspeed = launch_config["deepspeed_config"]
        assert deepspeed["zero_stage"] == 2
        assert deepspeed["gradient_accumulation_steps"] == paper.generator.gradient_accumulation_steps
        assert deepspeed["gradient_accumulation_steps"] == paper.solver.gradient_accumulation_steps


def test_zero3_is_refused_in_one_line():
    check_launch({"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_ZERO_STAGE": "2"})
    with pytest.raises(ConfigError, match=r"ZeRO-3 is not supported .*recipes/accelerate/zero2.yaml"):
        check_launch({"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_ZERO_STAGE": "3"})
