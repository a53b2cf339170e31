"""The self-play loop end to end on the tiny model: files, counts, resume after SIGKILL, config errors."""

import os
import random
import signal
import subprocess
import sys
import time
import zlib
from dataclasses import asdict, replace
from pathlib import Path

import pytest
import yaml

from toolr0_lite import selfplay
from toolr0_lite.config import ConfigError
from toolr0_lite.config import to_dict as config_dict
from toolr0_lite.models import RoleModel
from toolr0_lite.rundir import RunDir, read_jsonl
from toolr0_lite.selfplay import run_selfplay
from toolr0_lite.selfplay_config import load_config

TIMING = ("time", "seconds", "per_s", "per_second", "runtime", "memory")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    logs = []
    run_selfplay(load_config("tiny", out=str(out)), log=logs.append)
    return out, logs


def test_a_full_iteration_writes_every_record(tiny_run):
    out, logs = tiny_run
    it = out / "iter_00"
    for name in ("config.yaml", "state.json", "metrics.jsonl", "curriculum.png"):
        assert (out / name).is_file(), name
    for role in ("generator", "solver"):
        assert (it / role / "adapter_model.safetensors").is_file() and (it / role / "adapter_config.json").is_file()
    config = load_config("tiny")
    candidates = read_jsonl(it / "candidates.jsonl")
    assert [c["index"] for c in candidates] == list(range(config.synthesis.candidates))
    rollouts = read_jsonl(it / "generator_rollouts.jsonl")
    g = config.generator
    assert len(rollouts) == g.steps * g.prompts_per_step * g.group_size
    assert all({"text", "terms", "reward", "spec"} <= set(r) for r in rollouts)
    answers, s = read_jsonl(it / "solver_rollouts.jsonl"), config.solver
    assert len(answers) == s.steps * s.prompts_per_step * s.group_size
    assert all({"text", "gold_calls", "format", "accuracy", "reward"} <= set(r) for r in answers)

    metrics = read_jsonl(out / "metrics.jsonl")
    synthesis = next(m for m in metrics if m["phase"] == "synthesis")
    rejects = read_jsonl(it / "rejects.jsonl")
    tasks = read_jsonl(it / "tasks.jsonl")
    # every candidate is accounted for: a sound unique task or a rejection with a reason
    assert synthesis["verified_unique"] + sum(r["stage"] in ("parse", "verify", "dedup") for r in rejects) == len(candidates)
    assert synthesis["agreed"] + sum(r["stage"] == "agreement" for r in rejects) == synthesis["verified_unique"]
    assert len(tasks) == synthesis["selected"] + synthesis["topped_up_with_exemplars"]
    assert sum(synthesis["reject_reasons"].values()) == len(rejects) and all(r["reason"] for r in rejects)
    assert sum(m["phase"] == "generator" for m in metrics) == g.steps
    assert any(m["phase"] == "generator_trl" and "loss" in m for m in metrics)
    assert any(m["phase"] == "solver_trl" for m in metrics)
    assert [m["step"] for m in metrics if m["phase"] == "solver"] == list(range(s.steps))
    assert any("synthesis" in line and "rejects by reason" in line for line in logs)


def test_tasks_load_with_datasets(tiny_run):
    from datasets import load_dataset

    out, _ = tiny_run
    data = load_dataset("json", data_files=str(out / "iter_00" / "tasks.jsonl"), split="train")
    assert len(data) == len(read_jsonl(out / "iter_00" / "tasks.jsonl")) and "gold_calls" in data.column_names


def test_adapters_load_with_peft(tiny_run):
    from peft import PeftModel

    from toolr0_lite.sources import build_tiny_model, build_tiny_tokenizer

    out, _ = tiny_run
    model = PeftModel.from_pretrained(build_tiny_model(build_tiny_tokenizer()), str(out / "iter_00" / "solver"))
    assert "default" in model.peft_config


def test_a_finished_run_is_not_redone(tiny_run):
    out, _ = tiny_run
    before = (out / "metrics.jsonl").read_text()
    logs = []
    run_selfplay(load_config("tiny", out=str(out)), log=logs.append)
    assert (out / "metrics.jsonl").read_text() == before
    assert "resuming" in logs[0]


def test_too_few_tasks_skip_or_stop(tmp_path):
    logs = []
    run_selfplay(load_config("tiny", out=str(tmp_path / "skip"), synthesis={"on_too_few": "skip"}), log=logs.append)
    assert any("Solver phase is skipped" in line for line in logs)
    assert (tmp_path / "skip" / "iter_00" / "solver" / "adapter_model.safetensors").is_file()
    logs = []
    run = run_selfplay(load_config("tiny", out=str(tmp_path / "stop"), synthesis={"on_too_few": "stop"}), log=logs.append)
    assert any("stopping" in line for line in logs) and not run.is_done("iter_00/solver")


def test_resuming_with_another_config_is_refused(tiny_run):
    out, _ = tiny_run
    with pytest.raises(ConfigError, match=r"another config \(generator.steps, seed differ\)"):
        run_selfplay(load_config("tiny", out=str(out), seed=99, generator={"steps": 7}))


def test_a_model_given_with_other_model_settings_is_refused_before_the_run_folder_is_made(tmp_path):
    config = load_config("tiny", out=str(tmp_path / "run"))
    other = RoleModel.load(replace(config.model, lora_r=config.model.lora_r * 2))
    with pytest.raises(ConfigError, match="loaded with other model settings"):
        run_selfplay(config, roles=other)
    assert not (tmp_path / "run").exists()


def test_a_run_resumes_from_another_spelling_of_its_folder(tiny_run, monkeypatch):
    out, _ = tiny_run  # an absolute path; resume through a relative one, as from the folder above
    monkeypatch.chdir(out.parent)
    run = run_selfplay(load_config("tiny", out=out.name))
    assert run.is_done("iter_00/solver")


def test_a_runs_own_config_names_its_folder_from_any_working_folder(tmp_path, monkeypatch):
    # a run started with a relative out (runs/a) keeps it in its config.yaml; run from elsewhere, that file
    # must still name the run's folder, not a new runs/a under the working folder
    run = tmp_path / "runs" / "a"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(config_dict(load_config("tiny", out="runs/a"))))
    monkeypatch.chdir(tmp_path / "runs")
    assert load_config(path=run / "config.yaml").out == "runs/a"  # a config file, not a run: its out is the user's
    (run / "state.json").write_text("{}")
    assert load_config(path=run / "config.yaml").out == str(run)
    assert load_config(path=run / "config.yaml", out="elsewhere").out == "elsewhere"  # --out still wins


def rewards_that_move_the_weights(monkeypatch) -> None:
    """The tiny model earns no reward, so its LoRA weights never move and a test comparing them sees nothing: give
    each reward a term from its completion's checksum (the same text, the same term), so GRPO has spreads to follow."""
    for reward in (selfplay.GeneratorReward, selfplay.SolverReward):
        def spread(self, completions, *args, _real=reward.__call__, **kwargs):
            rewards = _real(self, completions, *args, **kwargs)
            return [r + zlib.crc32(str(c).encode()) % 5 / 4 for r, c in zip(rewards, completions)]
        monkeypatch.setattr(reward, "__call__", spread)


def _records(out: Path) -> dict:
    """Every record of a run, timing figures left out (they differ between any two runs)."""
    records = {}
    for path in sorted(out.rglob("*.jsonl")):
        rows = read_jsonl(path)
        records[str(path.relative_to(out))] = [{k: v for k, v in r.items() if not any(t in k for t in TIMING)} for r in rows]
    return records


def test_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path, tiny_run):
    reference, _ = tiny_run
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "toolr0_lite.cli", "run", "tiny", "--out", str(out)]
    rng = random.Random(7)
    kills = 0
    for _ in range(4):
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(4.0, 12.0))  # imports take a few seconds; kill somewhere inside the loop
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert kills >= 1
    assert RunDir(out).is_done("iter_00/solver")
    assert _records(out) == _records(reference)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"iterations": 0}, "iterations"),
        ({"iteration": 2}, "unknown key"),
        ({"generator": {"steps": 0}}, "generator.steps"),
        ({"solver": {"group_size": 1}}, "solver.group_size"),
        ({"generator": {"prompts_per_step": 0}}, "generator.prompts_per_step"),
        ({"solver": {"learning_rate": 0}}, "solver.learning_rate"),
        ({"generator": {"beta": -1}}, "generator.beta"),
        ({"solver": {"beta": 0.04, "epsilon": 0}}, "solver.beta must be >= 0 and epsilon > 0"),
        ({"generator": {"max_completion_length": 0}}, "generator.max_completion_length"),
        ({"generator": {"stepz": 3}}, "generator: unknown key"),
        ({"generator": {"steps": "many"}}, "generator.steps"),
        ({"probe": {"samples": 0}}, "probe"),
        ({"probe": {"temperature": 0}}, "probe.temperature"),
        ({"synthesis": {"tasks": 100, "candidates": 10}}, "synthesis.tasks"),
        ({"synthesis": {"agreement_min": 20}}, "synthesis.agreement_min"),
        ({"synthesis": {"on_too_few": "panic"}}, "synthesis.on_too_few"),
        ({"synthesis": {"agreement_by": "generator"}}, "synthesis.agreement_by: 'generator'; use solver"),
        ({"synthesis": {"mix": [0, 0, 0]}}, "synthesis.mix"),
        ({"synthesis": {"mix": [0.5, 0.5]}}, "synthesis.mix"),
        ({"synthesis": {"batch_size": 0}}, "synthesis.batch_size"),
        ({"report_to": "slack"}, "report_to"),
        ({"model": {"backend": "jax"}}, "model.backend"),
        ({"model": {"source": "./no/such/model"}}, "model.source"),
        ({"model": {"lora_r": 0}}, "model.lora_r"),
        ({"model": {"load_in_4bit": True}}, "model.load_in_4bit"),
        ({"spec": {"domains": []}}, "spec.domains"),
        ({"spec": {"no_call_share": 2}}, "spec.no_call_share"),
        ({"rewards": {"sigma": 0}}, "rewards.sigma"),
        ({"rewards": {"band": [0.9, 0.1]}}, "rewards.band"),
        ({"exemplars": "yes"}, "exemplars"),
        ({"solver_example_pair": True, "solver_exemplar": False}, "solver_example_pair: the Solver's prompt shows no example"),
        ({"solver_example_pair": True, "solver_example_last": "first"}, "solver_example_last: 'first'; use alternate"),
        ({"solver_example_last": "call"}, "solver_example_last: it orders a pair of examples; set solver_example_pair"),
        ({"solver_twin_in_step": True}, "solver_twin_in_step: there are no twins without synthesis.no_call_twins"),
        ({"solver_twin_in_step": True, "synthesis": {"no_call_twins": True}, "solver": {"prompts_per_step": 3}},
         "solver.prompts_per_step is 3; make it even"),
        ({"solver_twin_in_step": True, "synthesis": {"no_call_twins": True}, "solver": {"steps_per_generation": 2}},
         "set solver.steps_per_generation=1"),
        ({"solver_twin_group": True}, "solver_twin_group: a task and its twin form a group only when they share a step"),
    ],
)
def test_bad_configs_fail_before_any_model_loads(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config("tiny", **overrides)


def test_bad_preset_and_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist; choose one of"):
        load_config("huge")
    bad = tmp_path / "bad.yaml"
    bad.write_text("generator: [1, 2]\n")
    with pytest.raises(ConfigError, match="generator"):
        load_config("tiny", path=bad)


def test_cli_reports_config_errors_in_one_line(tmp_path, capsys):
    from toolr0_lite.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("iterations: 0\n")
    assert main(["run", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "iterations" in err


def test_every_preset_is_a_valid_config():
    for preset in ("tiny", "small_cpu", "colab_t4", "paper"):
        from toolr0_lite.config import from_dict, load_yaml
        from toolr0_lite.selfplay_config import PRESETS, SelfPlayConfig

        assert isinstance(from_dict(SelfPlayConfig, load_yaml(PRESETS / f"{preset}.yaml"), ""), SelfPlayConfig)


def test_a_built_wheel_ships_every_preset(tmp_path):
    """`pip install toolr0-lite` (not editable, as in the Colab notebook) must find the presets too."""
    import zipfile

    from toolr0_lite.selfplay_config import PRESETS

    root = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(root)], check=True)
    names = zipfile.ZipFile(next(tmp_path.glob("*.whl"))).namelist()
    shipped = {Path(n).name for n in names if n.startswith("toolr0_lite/presets/")}
    assert shipped == {p.name for p in PRESETS.glob("*.yaml")} and "tiny.yaml" in shipped


def test_a_kl_regularised_run_gives_each_role_its_own_reference(tmp_path, monkeypatch):
    """beta > 0: TRL adds a "ref" copy of the slot per phase; it must never reach the other role or the base."""
    import torch

    from toolr0_lite import selfplay
    from toolr0_lite.models import RoleModel
    from toolr0_lite.rewards import completion_text

    def varied(reward):  # the tiny model's rewards are all 0, so nothing would move: add a term that varies
        return lambda *a, completions, **kw: [r + len(set(completion_text(c))) / 10
                                              for r, c in zip(reward(*a, completions=completions, **kw), completions)]

    monkeypatch.setattr(selfplay.GeneratorReward, "__call__", varied(selfplay.GeneratorReward.__call__))
    monkeypatch.setattr(selfplay.SolverReward, "__call__", varied(selfplay.SolverReward.__call__))
    loaded = []
    real_load = RoleModel.load.__func__
    monkeypatch.setattr(RoleModel, "load", classmethod(lambda cls, c: loaded.append(real_load(cls, c)) or loaded[-1]))
    config = load_config("tiny", out=str(tmp_path), iterations=2, generator={"beta": 0.04}, solver={"beta": 0.04})
    run_selfplay(config, log=lambda _: None)
    roles = loaded[0]

    metrics = read_jsonl(tmp_path / "metrics.jsonl")
    for phase in ("generator_trl", "solver_trl"):
        kl = [m["kl"] for m in metrics if m["phase"] == phase and "kl" in m]
        assert len(kl) == 2 * config.generator.steps and any(k > 0 for k in kl), (phase, kl)  # logged, and moves
    for role in ("generator", "solver"):
        saved = RoleModel.load(config.model)  # a fresh base: seeded, so the same weights as the run's
        saved.load_role(role, tmp_path / "iter_01" / role)
        assert all(torch.equal(roles.lora_weights(role)[k], v) for k, v in saved.lora_weights(role).items())
        assert not (tmp_path / "iter_01" / role / "ref").exists()  # only the role's own adapter is saved
    fresh = dict(RoleModel.load(config.model).model.named_parameters())
    assert all(torch.equal(p, fresh[n]) for n, p in roles.model.named_parameters() if "lora_" not in n)


def test_kl_with_the_unsloth_backend_is_refused_before_loading(monkeypatch):
    from toolr0_lite.models import ModelConfig

    monkeypatch.setattr(ModelConfig, "resolved_backend", lambda self: "unsloth")
    with pytest.raises(ConfigError, match="solver.beta: .*Unsloth.*model.backend: peft"):
        load_config("tiny", solver={"beta": 0.04})
    assert load_config("tiny").solver.beta == 0.0


def test_a_run_started_before_a_setting_existed_resumes_at_its_default(tiny_run):
    out, _ = tiny_run
    path = out / "config.yaml"
    original = path.read_text()
    older = yaml.safe_load(original)
    del older["solver"]["gradient_accumulation_steps"]  # as written by a kit without that setting
    path.write_text(yaml.safe_dump(older, sort_keys=False))
    try:
        assert run_selfplay(load_config("tiny", out=str(out))).is_done("iter_00/solver")
        path.write_text(yaml.safe_dump(older, sort_keys=False))
        with pytest.raises(ConfigError, match=r"solver.gradient_accumulation_steps differ"):
            run_selfplay(load_config("tiny", out=str(out), solver={"gradient_accumulation_steps": 2}))
    finally:
        path.write_text(original)


def test_a_trainer_with_other_batch_defaults_still_trains_the_kits_step(tmp_path, monkeypatch):
    """Unsloth's patched GRPOConfig defaults gradient_accumulation_steps to 2 and the batch to 4 (TRL: 1 and 8).
    Before the kit passed gradient accumulation explicitly, colab_t4 under Unsloth trained 16 completions a step
    and rolled out twice per four steps. Every setting that shapes a step must be the kit's, whatever the defaults."""
    from dataclasses import dataclass

    import trl

    from toolr0_lite.models import RoleModel
    from toolr0_lite.selfplay import train_role

    @dataclass
    class OtherDefaults(trl.GRPOConfig):
        per_device_train_batch_size: int = 4
        gradient_accumulation_steps: int = 2

    made = []

    class Trainer:
        def __init__(self, args, **_):
            made.append(args)

        def train(self):
            pass

        def remove_callback(self, _):
            pass

        def add_callback(self, _):
            pass

    monkeypatch.setattr(trl, "GRPOConfig", OtherDefaults)
    monkeypatch.setattr(trl, "GRPOTrainer", Trainer)
    config = load_config("tiny", out=str(tmp_path),
                         solver={"prompts_per_step": 2, "group_size": 4, "steps_per_generation": 4})  # fmt: skip
    phase = config.solver
    train_role(RoleModel.load(config.model), "solver", [{"prompt": "hi"}], [lambda **_: [0.0]], phase, config,
               RunDir(tmp_path), 0)  # fmt: skip
    args = made[0]
    assert args.per_device_train_batch_size * args.gradient_accumulation_steps == 8  # a step: 2 prompts × 4
    assert args.gradient_accumulation_steps == phase.gradient_accumulation_steps == 1
    assert args.generation_batch_size == 8 * 4  # one rollout call for four steps


def script_candidates(monkeypatch, tasks) -> None:
    """Synthesis samples these tasks' completions as its candidates instead of the tiny model's noise."""
    from helpers import completion_of

    def scripted(roles, config, run, iteration):
        run.append("iter_00/candidates.jsonl", [{"index": i, "spec": asdict(t.spec), "text": completion_of(t),
                                                 "completion_tokens": 1, "generator_reward": 1.0, "rank": 0}
                                                for i, t in enumerate(tasks)])  # fmt: skip
        return len(tasks)

    monkeypatch.setattr(selfplay, "sample_candidates", scripted)


def test_synthesis_can_drop_tasks_whose_gold_values_are_invented(tmp_path, monkeypatch):
    from helpers import sound_task

    from toolr0_lite.records import Call

    tasks = [sound_task(), sound_task(question="Will it rain in Bergen tomorrow and the day after that?",
                                      gold_calls=[Call("get_forecast", {"city": "Paris", "days": 2})])]  # fmt: skip
    script_candidates(monkeypatch, tasks)
    config = load_config("tiny", out=str(tmp_path), synthesis={"require_grounded": True, "heldout": 0})
    run = RunDir(tmp_path)
    selected = selfplay.synthesize(RoleModel.load(config.model), config, run, 0, log=lambda _: None)
    rejects = read_jsonl(run.path("iter_00", "rejects.jsonl"))
    assert [(r["stage"], r["reason"], r["id"]) for r in rejects] == [("grounding", "ungrounded_value", "iter_00-00001")]
    assert [t.question for t in selected if not t.id.startswith("exemplar")] == [tasks[0].question]
    synthesis = read_jsonl(run.path("metrics.jsonl"))[-1]
    assert (synthesis["verified_unique"], synthesis["ungrounded"], synthesis["agreed"]) == (2, 1, 1)


@pytest.mark.parametrize("judge", ["solver", "base"])
def test_the_agreement_check_asks_the_judge_it_is_set_to(tmp_path, monkeypatch, judge):
    """Only `judge` names the gold tool (the other declines), so the task passes agreement only if `judge` is asked."""
    from helpers import sound_task

    from toolr0_lite.models import Generation

    script_candidates(monkeypatch, [sound_task()])
    config = load_config("tiny", out=str(tmp_path), synthesis={"agreement_by": judge, "agreement_min": 2, "heldout": 0})
    roles, asked = RoleModel.load(config.model), []
    gold = '<tool_call_answer>[{"name": "get_forecast", "arguments": {"city": "Oslo", "days": 3}}]</tool_call_answer>'

    def answers(role, prompts, n=1, **_):
        asked.append(role)
        return [[Generation(gold if role == judge else "<tool_call_answer>[]</tool_call_answer>", 1, 1)] * n] * len(prompts)

    monkeypatch.setattr(roles, "generate", answers)
    selfplay.synthesize(roles, config, RunDir(tmp_path), 0, log=lambda _: None)
    assert read_jsonl(tmp_path / "metrics.jsonl")[-1]["agreed"] == 1
    assert asked == [judge, "solver"]  # the agreement answers, then the Solver's difficulty labels


def test_synthesis_can_add_no_call_twins_and_the_solver_trains_on_them(tmp_path, monkeypatch):
    from helpers import sound_task

    from toolr0_lite.records import Task

    script_candidates(monkeypatch, [sound_task()])
    config = load_config("tiny", out=str(tmp_path), synthesis={"no_call_twins": True, "heldout": 0, "min_tasks": 1})
    run, lines = RunDir(tmp_path), []
    roles = RoleModel.load(config.model)
    training = selfplay.synthesize(roles, config, run, 0, log=lines.append)
    written = [Task.from_dict(d) for d in read_jsonl(run.path("iter_00", "tasks.jsonl"))]
    assert [(t.id, [x.name for x in t.tools], len(t.gold_calls)) for t in written] == [
        ("iter_00-00000", ["get_forecast", "book_hotel"], 1), ("iter_00-00000-twin", ["book_hotel"], 0)]
    assert training == written
    synthesis = read_jsonl(run.path("metrics.jsonl"))[-1]
    assert (synthesis["selected"], synthesis["no_call_twins"], synthesis["no_call_tasks"]) == (1, 1, 1)
    assert "1 selected (+1 no-call twins)" in lines[-1]

    rows = []
    monkeypatch.setattr(selfplay, "train_role", lambda roles, role, r, *rest, **_: rows.extend(r))
    selfplay.solver_phase(roles, training, config, run, 0)
    assert {r["gold_calls"] for r in rows} == {'[{"name": "get_forecast", "arguments": {"city": "Oslo", "days": 3}}]', "[]"}
    task_prompt, twin_prompt = rows[0]["prompt"], rows[1]["prompt"]  # a twin is shown its task's worked example:
    assert task_prompt[:-1] == twin_prompt[:-1] and task_prompt[-1] != twin_prompt[-1]  # only the menu differs


def test_solver_twin_in_step_gives_trl_each_twin_in_its_tasks_step(tmp_path):
    """TRL's own sampler shuffles the rows; with the setting the steps take the kit's order, so each step's
    two groups are a task and its twin (read back from the rollouts TRL's reward calls wrote)."""
    from helpers import sound_task

    from toolr0_lite.pipeline import with_no_call_twins

    tasks = with_no_call_twins([sound_task(id=f"t{i}", question=f"Weather in Oslo over the next {i + 2} days?")
                                for i in range(3)])  # fmt: skip
    config = load_config("tiny", out=str(tmp_path), solver_twin_in_step=True, synthesis={"no_call_twins": True},
                         solver={"steps": 3, "prompts_per_step": 2, "group_size": 2})  # fmt: skip
    selfplay.solver_phase(RoleModel.load(config.model), tasks, config, RunDir(tmp_path), 0)
    steps = {}
    for r in read_jsonl(tmp_path / "iter_00" / "solver_rollouts.jsonl"):
        steps.setdefault(r["step"], set()).add(r["task"])
    assert sorted(map(sorted, steps.values())) == [[0, 1], [2, 3], [4, 5]]


@pytest.mark.parametrize("twin_group", [True, False])
def test_solver_twin_group_ranks_a_task_and_its_twin_in_one_grpo_group(tmp_path, monkeypatch, twin_group):
    """A reward that pays every twin's answer 1 and every task's 0 has no spread inside a prompt's group, so TRL
    gives separate groups no gradient (frac_reward_zero_std 1); one group of a task and its twin has spread (0).
    A task without a twin is a group alone: its 2 × group_size answers all its own."""
    from helpers import sound_task

    from toolr0_lite.pipeline import with_no_call_twins
    from toolr0_lite.records import Task

    tasks = with_no_call_twins([sound_task(id=f"t{i}", question=f"Weather in Oslo over the next {i + 2} days?")
                                for i in range(2)]) + [Task("Say hello.", [], [], id="s0")]  # fmt: skip
    seen = []

    class TwinsPaid:
        __name__ = "solver_reward"

        def __init__(self, run, iteration):
            pass

        def __call__(self, completions, task, **_):
            seen.append(list(task))
            return [float(tasks[t].id.endswith("-twin")) for t in task]

    monkeypatch.setattr(selfplay, "SolverReward", TwinsPaid)
    config = load_config("tiny", out=str(tmp_path), solver_twin_in_step=True, solver_twin_group=twin_group,
                         synthesis={"no_call_twins": True}, solver={"steps": 3, "prompts_per_step": 2, "group_size": 2})  # fmt: skip
    selfplay.solver_phase(RoleModel.load(config.model), tasks, config, RunDir(tmp_path), 0)
    zero_std = [r["frac_reward_zero_std"] for r in read_jsonl(tmp_path / "metrics.jsonl")
                if r["phase"] == "solver_trl" and "frac_reward_zero_std" in r]  # fmt: skip
    assert sorted(seen) == [[0, 0, 1, 1], [2, 2, 3, 3], [4, 4, 4, 4]]  # each step: the task's answers, then its twin's
    single = [k for k, step in enumerate(seen) if step[0] == 4]
    assert [z for k, z in enumerate(zero_std) if k not in single] == ([0.0, 0.0] if twin_group else [1.0, 1.0])
    assert [zero_std[k] for k in single] == [1.0]


def test_solver_exemplar_off_leaves_the_generator_its_example():
    from toolr0_lite.selfplay import _example

    config = load_config("tiny", solver_exemplar=False)
    assert _example(config, 3) == 3 and _example(config, 3, "solver") is None
    assert not config.solver_shows_example and load_config("tiny").solver_shows_example
    assert not load_config("tiny", exemplars=False, solver_exemplar=True).solver_shows_example  # exemplars off: none at all


def test_the_think_prefill_reaches_trl_as_text_and_the_rewards_read_the_whole_answer(tmp_path, monkeypatch):
    """TRL would open a new assistant turn after a chat whose last turn is the begun answer: the Solver phase
    hands it the rendered text instead, and the reward functions put `<think>` back before each completion."""
    from helpers import sound_task

    from toolr0_lite import selfplay
    from toolr0_lite.models import RoleModel

    config = load_config("tiny", out=str(tmp_path), solver_think_prefill=True, solver={"steps": 1})
    roles = RoleModel.load(config.model)
    seen = []
    real_call = selfplay.SolverReward.__call__

    def recording(self, completions, gold_calls, answer_prefix=None, **kwargs):
        seen.append((completions, answer_prefix, kwargs["prompts"]))
        return real_call(self, completions, gold_calls, answer_prefix, **kwargs)

    monkeypatch.setattr(selfplay.SolverReward, "__call__", recording)
    selfplay.solver_phase(roles, [sound_task()], config, RunDir(tmp_path), 0)
    completions, prefixes, prompts = seen[0]
    assert all(isinstance(c, str) for c in completions) and set(prefixes) == {"<think>"}
    assert all(p == roles.chat_prompt(selfplay.solver_prompt(config, sound_task(), 0)) for p in prompts)
    assert prompts[0].endswith("<|im_start|>assistant\n<think>")
    assert read_jsonl(tmp_path / "metrics.jsonl")[-1]["phase"] == "solver_trl"
    rollouts = read_jsonl(tmp_path / "iter_00" / "solver_rollouts.jsonl")  # every answer whole, with its terms
    assert [r["text"] for r in rollouts] == ["<think>" + c for c in completions]
    assert all(r["reward"] == r["format"] + r["accuracy"] for r in rollouts)
    assert rollouts[0]["gold_calls"] == [asdict(c) for c in sound_task().gold_calls] and rollouts[0]["task"] == 0


def test_the_example_pair_reaches_the_solvers_training_and_the_runs_evaluation(tmp_path, monkeypatch):
    from helpers import sound_task

    from toolr0_lite import evaluate
    from toolr0_lite.prompts import solver_messages

    config = load_config("tiny", out=str(tmp_path), solver_example_pair=True, solver_example_last="no_call")
    shown = solver_messages(sound_task(), 3, example_pair=True, example_last="no_call")  # place 3 alternating: call last
    assert selfplay.solver_prompt(config, sound_task(), 3) == shown != solver_messages(sound_task(), 3, example_pair=True)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config_dict(config)))
    (tmp_path / "heldout.jsonl").write_text("")
    seen = []
    monkeypatch.setattr(evaluate, "latest_solver", lambda root: root / "iter_00" / "solver")
    monkeypatch.setattr(evaluate, "_check_bfcl", lambda config: None)
    monkeypatch.setattr(evaluate, "evaluate", lambda roles, out, config, *rest: seen.append(config) or {})
    evaluate.evaluate_run(tmp_path, evaluate.EvalConfig(), log=lambda _: None)
    assert seen[0].example_pair and seen[0].exemplars and seen[0].example_last == "no_call"
    assert evaluate.prompt_of(sound_task(), "heldout", seen[0], 3) == shown
