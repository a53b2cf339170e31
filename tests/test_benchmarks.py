"""The learning and ablation benchmarks end to end on the tiny model: their records, and adding seeds or arms."""

import json
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
import ablate_cpu  # noqa: E402
import common  # noqa: E402
import learn_cpu  # noqa: E402
from test_selfplay import TIMING, _records, rewards_that_move_the_weights  # noqa: E402

from toolr0_lite.rundir import read_jsonl  # noqa: E402

pytestmark = pytest.mark.bfcl


def _write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_learn_cpu_records_every_measure_and_keeps_earlier_seeds(tmp_path, monkeypatch):
    earlier = {"seed": 9, "after": "base", "heldout_reward": 0.5}
    _write(tmp_path / "learning.jsonl", [earlier])
    monkeypatch.setattr(sys, "argv", ["learn_cpu.py", "--preset", "tiny", "--seeds", "0", "--iterations", "1",
                                      "--set", "synthesis.require_grounded=true", "--out", str(tmp_path)])  # fmt: skip
    learn_cpu.main()
    assert yaml.safe_load((tmp_path / "seed_0" / "config.yaml").read_text())["synthesis"]["require_grounded"] is True
    rows = read_jsonl(tmp_path / "learning.jsonl")
    assert rows[0] == earlier
    assert [(r["seed"], r["after"]) for r in rows[1:]] == [(0, "base"), (0, "iter_00")]
    trained = rows[2]
    for measure in learn_cpu.MEASURES[:7] + ("rollout_parse_rate", "accept_rate", "reject_reasons"):
        assert measure in trained, measure
    assert 0.0 <= trained["heldout_reward"] <= 2.0 and 0.0 <= trained["rollout_parse_rate"] <= 1.0
    assert 0.0 <= trained["solver_train_reward"] <= 2.0  # TRL's logged step rewards reached the record
    assert "train_minutes" in trained  # from the phases' own timings: it survives a resume
    assert sum(trained["solver_groups"].values()) == 2 * 2  # tiny: 2 Solver steps × 2 prompts, one group each
    assert trained["solver_frontier_share"] == trained["solver_groups"]["some"] / 4
    assert trained["solver_menu_effect"] is None  # no no-call twins in this run (test_diagnose: with them)
    declines = trained["solver_declines"]  # every answer by its task's kind (tiny: 2 steps × 2 prompts × G = 2)
    assert sum(d["answers"] for d in declines.values()) == 8 and set(declines) == {"call", "twin", "no_call"}
    assert trained["solver_decline_advantage"] == pytest.approx(sum(d["advantage"] for d in declines.values()), abs=2e-3)
    assert 0.0 <= trained["fit_reward_before"] <= 2.0 and 0.0 <= trained["fit_exact_after"] <= 1.0
    assert trained["solver_change"] >= 0.0
    assert rows[1]["dtype"] == trained["dtype"] in ("float32", "bfloat16")  # the answers' dtype, as made
    run = tmp_path / "seed_0"
    fit = read_jsonl(run / "fit" / "iter_00" / "after" / "results.jsonl")  # the Solver phase's own tasks
    assert sorted(r["id"] for r in fit) == sorted(t["id"] for t in read_jsonl(run / "iter_00" / "tasks.jsonl"))
    assert (tmp_path / "learning.png").stat().st_size > 0
    held_out = read_jsonl(tmp_path / "heldout.jsonl")
    assert {t["id"] for t in held_out} >= {t.id for t in common.HAND_WRITTEN}


def test_an_iteration_without_tasks_is_rowed_without_a_fit(tmp_path):
    """With synthesis.on_too_few: skip, an iteration may keep no task (the tiny model writes none sound): the Solver
    phase is skipped, and its row has no fit rather than a failure."""
    rows = common.learn(tmp_path / "seed_0", 0, 1, {"synthesis": {"on_too_few": "skip"}}, "tiny", bfcl=False,
                        log=lambda _: None)  # fmt: skip
    assert read_jsonl(tmp_path / "seed_0" / "iter_00" / "tasks.jsonl") == []
    assert rows[-1]["after"] == "iter_00" and "fit_reward_after" not in rows[-1]


def _adapter(folder: Path, b: list, rslora: bool = False, fixed: str = "y") -> Path:
    """A LoRA adapter folder (r = 2, alpha = 4) of two layers: "x" with the given B and A = diag(3, 4), and `fixed`
    with B = A = ones (the same in every folder)."""
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"r": 2, "lora_alpha": 4, "use_rslora": rslora}))
    tensors = {"x.lora_A.weight": torch.tensor([[3.0, 0.0], [0.0, 4.0]]), "x.lora_B.weight": torch.tensor(b),
               f"{fixed}.lora_A.weight": torch.ones(2, 3), f"{fixed}.lora_B.weight": torch.ones(3, 2)}  # fmt: skip
    save_file(tensors, folder / "adapter_model.safetensors")
    return folder


def test_solver_change_is_the_mean_distance_of_the_layers_deltas(tmp_path):
    """ΔW = (alpha / r)·B·A: B from 0 to I moves layer x by 2·‖diag(3, 4)‖ = 10 and layer y not at all, so the mean
    is 5; rsLoRA scales by alpha / √r instead. Adapters of different layers are refused."""
    zero, eye = [[0.0, 0.0], [0.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]]
    before, after = _adapter(tmp_path / "before", zero), _adapter(tmp_path / "after", eye)
    assert common.solver_change(before, after) == pytest.approx(5.0)
    assert common.solver_change(after, after) == 0.0
    rs_before, rs_after = _adapter(tmp_path / "rs_before", zero, True), _adapter(tmp_path / "rs_after", eye, True)
    assert common.solver_change(rs_before, rs_after) == pytest.approx(4 / 2**0.5 * 5 / 2)
    with pytest.raises(ValueError, match="adapt different layers"):
        common.solver_change(before, _adapter(tmp_path / "other", eye, fixed="z"))


def test_solver_groups_sorts_each_group_by_its_exact_answers():
    exact, partial, unthought = (dict(accuracy=1.0), dict(accuracy=0.6), dict(accuracy=0.0))  # r_acc of an answer
    batches = [(0, 0, [exact, partial, exact, unthought]), (1, 1, [exact] * 4), (2, 0, [partial] * 4),
               (3, 2, [exact] * 4 + [partial] * 4)]  # the last: one task drawn twice in a batch, two groups  # fmt: skip
    rows = [{"step": step, "task": task, **answer} for step, task, answers in batches for answer in answers]
    assert common.solver_groups(rows, group_size=4) == {"none": 2, "some": 1, "all": 2}
    assert common.solver_groups([], group_size=4) == {"none": 0, "some": 0, "all": 0}


def test_seeds_share_the_heldout_set_and_the_bases_answers(tmp_path, monkeypatch):
    from toolr0_lite.models import RoleModel

    class Untrained(Exception):
        pass

    def base_row(seed: int) -> list[dict]:  # what learn() does before training: the held-out set, the base's row
        rows = []
        with pytest.raises(Untrained):
            common.learn(tmp_path / f"seed_{seed}", seed, 1, {}, "tiny", on_row=rows.append, log=lambda _: None)
        return rows

    monkeypatch.setattr(common, "run_selfplay", lambda *a, **kw: (_ for _ in ()).throw(Untrained()))
    first = base_row(0)
    calls = []
    real = RoleModel.generate

    def generate(self, role, prompts, **kw):
        calls.append(role)
        return real(self, role, prompts, **kw)

    monkeypatch.setattr(RoleModel, "generate", generate)
    assert base_row(1) == [{**first[0], "seed": 1}]
    assert calls == []  # neither the held-out set nor the base's answers are made again for another seed
    assert [p.name for p in tmp_path.glob("heldout*.jsonl")] == ["heldout.jsonl"]


def test_ablate_cpu_adds_an_arm_to_an_earlier_table(tmp_path, monkeypatch):
    earlier = [{"seed": 0, "after": after, "arm": arm, "paper_avg": paper, "minutes": 1.0, "heldout_reward": 0.5}
               for after, arm, paper in [("base", "base (no training)", 24.85), ("iter_00", "full", 47.84)]]
    _write(tmp_path / "ablations.jsonl", earlier)
    monkeypatch.setattr(sys, "argv", ["ablate_cpu.py", "--preset", "tiny", "--arms", "no_exemplars", "--out", str(tmp_path)])
    ablate_cpu.main()
    rows = read_jsonl(tmp_path / "ablations.jsonl")
    assert [r["arm"] for r in rows] == ["base (no training)", "full", "no_exemplars"]
    assert rows[0] != earlier[0] and "heldout_reward" in rows[0]  # the base is scored again with the new arm
    assert rows[1] == earlier[1] and rows[2]["paper_avg"] is None


def test_learn_gpu_closes_its_window_on_a_scored_iteration(tmp_path, monkeypatch, capsys):
    import learn_gpu

    monkeypatch.setattr(sys, "argv", ["learn_gpu.py", "--preset", "tiny", "--minutes", "0.05", "--iterations", "3",
                                      "--set", "solver.steps=3", "--out", str(tmp_path)])  # fmt: skip
    learn_gpu.main()
    rows = read_jsonl(tmp_path / "learning.jsonl")
    assert yaml.safe_load((tmp_path / "seed_0" / "config.yaml").read_text())["solver"]["steps"] == 3
    assert [r["after"] for r in rows] == ["base", "iter_00"]  # 3 s: the first iteration runs, no second starts
    assert "stopping before iter_01" in capsys.readouterr().out
    assert rows[1]["heldout_reward"] is not None and rows[1]["peak_memory_mib"] > 0  # from the run's metrics
    assert {r["bfcl_prompt"] for r in rows} == {"bfcl"}  # the leaderboard's prompt mode, by default
    assert (tmp_path / "base_bfcl" / "summary.json").is_file() and not (tmp_path / "base").exists()
    assert (tmp_path / "learning.png").is_file()


def test_a_given_heldout_set_is_scored_and_no_set_is_written(tmp_path, monkeypatch):
    """--heldout: a set written on another machine or for another arm is the one scored; the base Generator
    writes none, and the base's held-out answers are exactly that set's tasks."""
    from toolr0_lite.models import RoleModel

    given = tmp_path / "given.jsonl"
    _write(given, [t.to_dict() for t in common.HAND_WRITTEN[:3]])
    roles = []
    real = RoleModel.generate
    monkeypatch.setattr(RoleModel, "generate", lambda self, role, prompts, **kw: roles.append(role) or
                        real(self, role, prompts, **kw))  # fmt: skip
    monkeypatch.setattr(common, "run_selfplay", lambda *a, **kw: (_ for _ in ()).throw(KeyboardInterrupt()))
    out = tmp_path / "run"
    common.use_heldout(str(given), out)
    with pytest.raises(KeyboardInterrupt):  # stopped where training would start: the base is scored by then
        common.learn(out / "seed_0", 0, 1, {}, "tiny", log=lambda _: None)
    assert "generator" not in roles
    answers = [r for r in read_jsonl(out / "base" / "results.jsonl") if r["benchmark"] == "heldout"]
    assert sorted(r["id"] for r in answers) == sorted(t.id for t in common.HAND_WRITTEN[:3])
    common.use_heldout(str(given), out)  # the same set again: accepted


def test_bfcl_deferred_is_added_later_to_the_same_answers(tmp_path, monkeypatch):
    """learn(bfcl=False) scores the held-out set alone; a later learn() with BFCL adds its answers and asks none of the
    held-out tasks again."""
    given = tmp_path / "given.jsonl"
    _write(given, [t.to_dict() for t in common.HAND_WRITTEN[:3]])
    monkeypatch.setattr(common, "run_selfplay", lambda *a, **kw: (_ for _ in ()).throw(KeyboardInterrupt()))
    out = tmp_path / "run"
    common.use_heldout(str(given), out)
    benchmarks = {}
    for bfcl in (False, True):
        with pytest.raises(KeyboardInterrupt):  # stopped where training would start: the base is scored by then
            common.learn(out / "seed_0", 0, 1, {}, "tiny", bfcl=bfcl, log=lambda _: None)
        benchmarks[bfcl] = [r["benchmark"] for r in read_jsonl(out / "base" / "results.jsonl")]
    assert benchmarks[False] == ["heldout"] * 3
    assert benchmarks[True][:3] == benchmarks[False] and benchmarks[True].count("bfcl") > 0
    assert benchmarks[True].count("heldout") == 3


@pytest.mark.parametrize("content, problem", [(None, "no such file"), ("not json\n", "not a file of tasks"),
                                              ('{"question": "q"}\n', "not a file of tasks"), ("", "holds no tasks"),
                                              ("other", "scored on another held-out set")])  # fmt: skip
def test_a_bad_heldout_file_is_one_line_before_any_model_loads(tmp_path, monkeypatch, capsys, content, problem):
    from toolr0_lite.models import RoleModel

    given, out = tmp_path / "given.jsonl", tmp_path / "run"
    if content == "other":  # a good file, but the output folder was scored on another set
        _write(given, [common.HAND_WRITTEN[0].to_dict()])
        _write(out / "heldout.jsonl", [common.HAND_WRITTEN[1].to_dict()])
    elif content is not None:
        given.write_text(content)
    monkeypatch.setattr(RoleModel, "load", lambda *a, **kw: pytest.fail("a model loaded"))
    monkeypatch.setattr(sys, "argv", ["learn_cpu.py", "--preset", "tiny", "--out", str(out), "--heldout", str(given)])
    assert learn_cpu.run_entry_point("learn_cpu", learn_cpu.main) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"learn_cpu: --heldout {given}") and problem in err and len(err.splitlines()) == 1


def test_a_stopped_heldout_generation_keeps_its_finished_slices(tmp_path, monkeypatch):
    from toolr0_lite.models import RoleModel
    from toolr0_lite.selfplay_config import load_config

    config = load_config("tiny")
    calls = []
    real = RoleModel.generate

    def generate(self, role, prompts, **kw):
        calls.append(len(prompts))
        if len(calls) == 2:
            raise KeyboardInterrupt  # stopped during the second slice
        return real(self, role, prompts, **kw)

    monkeypatch.setattr(RoleModel, "generate", generate)
    path = tmp_path / "heldout.jsonl"
    roles = RoleModel.load(config.model)
    with pytest.raises(KeyboardInterrupt):
        common.heldout_tasks(path, roles, config, 20, log=lambda _: None)
    assert [p.name for p in sorted((tmp_path / "heldout.parts").iterdir())] == ["part_00.jsonl"]
    tasks = common.heldout_tasks(path, roles, config, 20, log=lambda _: None)
    assert calls == [16, 4, 4]  # the finished slice is not asked again
    assert {t.id for t in tasks} >= {t.id for t in common.HAND_WRITTEN}


def test_prefix_cache_speed_times_both_paths_on_one_model(monkeypatch):
    """gpu_check's cache figure: the off arm reads every prompt whole, the on arm shares prefixes, same answers."""
    from toolr0_lite.models import ModelConfig, RoleModel
    from toolr0_lite.prompts import solver_messages

    roles = RoleModel.load(ModelConfig(source="tiny", lora_r=4, lora_alpha=8))
    prompts = [solver_messages(task, i % 2) for i, task in enumerate(common.HAND_WRITTEN[:6])]
    widths = {False: [], True: []}  # the shared-prefix width of each batch, by the cache setting it ran under
    original = roles._prefix_cache
    monkeypatch.setattr(roles, "_prefix_cache",
                        lambda batch, prefix, filled, width: widths[roles.config.prefix_cache].append(width)
                        or original(batch, prefix, filled, width))  # fmt: skip
    figures = common.prefix_cache_speed(roles, prompts, max_new_tokens=6)
    assert figures["items"] == 6 and figures["same_answers"] == 6
    assert figures["items_per_s_off"] > 0 and figures["items_per_s_on"] > 0
    assert set(widths[False]) == {0} and max(widths[True]) > 0


def test_bench_cpu_speed_prints_only_the_chosen_figures(capsys, monkeypatch):
    import bench_cpu_speed

    monkeypatch.setattr(bench_cpu_speed, "HAND_WRITTEN", common.HAND_WRITTEN[:2])  # the generation figure's prompts
    bench_cpu_speed.bench_model("tiny", "tiny", items=3, max_new_tokens=4, grpo_steps=1, figures={"eval", "generate"})
    lines = [x for x in capsys.readouterr().out.splitlines() if not x.startswith("#")]
    assert [x.split(":")[0] for x in lines] == [
        "tiny generate_tokens_per_s", "tiny generate_tokens_per_s bfloat16 sdpa→eager",
        "tiny eval_items_per_s prefix_cache", "tiny eval_items_per_s bfloat16", "tiny eval_items_per_s both"]
    for x in lines:  # name: before after ratio, the ratio computed from the two
        before, after, ratio = x.split(": ")[1].split()
        assert float(before) > 0 and float(after) > 0
        assert ratio.endswith("x") and float(ratio[:-1]) == pytest.approx(float(after) / float(before), abs=0.011)


def test_learn_trains_and_scores_on_one_copy_of_the_model_with_the_same_records(tmp_path, monkeypatch):
    """learn() hands its scoring model to self-play (one copy in memory, not two): the rows and records are those of
    a learn() whose self-play loads a model of its own, with rewards that move the weights (a mix-up would show)."""
    from safetensors.torch import load_file

    from toolr0_lite.models import RoleModel
    from toolr0_lite.selfplay import run_selfplay

    rewards_that_move_the_weights(monkeypatch)
    loads, real_load = [], RoleModel.load
    monkeypatch.setattr(RoleModel, "load", classmethod(lambda cls, config: loads.append(config) or real_load(config)))

    def learned(folder: Path) -> tuple[list[dict], dict]:  # the rows, and every record of the run (TRL's losses too)
        got = common.learn(folder / "seed_0", 0, 2, {}, "tiny", log=lambda _: None)
        return [{k: v for k, v in r.items() if not any(t in k for t in (*TIMING, "minutes"))} for r in got], \
            _records(folder / "seed_0")

    shared = learned(tmp_path / "shared")
    assert len(loads) == 1
    assert all(row["solver_change"] > 0 for row in shared[0][1:])  # these rewards move the weights each phase
    initial = load_file(tmp_path / "shared" / "seed_0" / "initial_solver" / "adapter_model.safetensors")
    assert all(not w.any() for k, w in initial.items() if "lora_B" in k)  # iteration 0's fit began from the base
    run = tmp_path / "shared" / "seed_0"
    scored = {(i, when): json.loads((run / "fit" / i / when / "settings.json").read_text())["adapter"]
              for i in ("iter_00", "iter_01") for when in ("before", "after")}  # fmt: skip
    solver = {i: str(run / i / "solver") for i in ("iter_00", "iter_01")}
    assert scored == {("iter_00", "before"): str(run / "initial_solver"), ("iter_00", "after"): solver["iter_00"],
                      ("iter_01", "before"): solver["iter_00"], ("iter_01", "after"): solver["iter_01"]}  # fmt: skip
    monkeypatch.setattr(common, "run_selfplay", lambda config, log, roles: run_selfplay(config, log=log))
    assert learned(tmp_path / "own") == shared and len(loads) == 1 + 1 + 2  # scoring's copy + one per iteration
