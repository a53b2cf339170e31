"""A run's curriculum as a report a person reads: `report.md` and its figures, in the run directory.

Everything comes from the records the loop already wrote (metrics.jsonl, iter_XX/tasks.jsonl, eval/summary.json),
so a report can be rendered for a finished run, a running one, or one copied from another machine.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from toolr0_lite.records import Task
from toolr0_lite.rundir import atomic_write_text, read_jsonl

BANDS = ("easy", "medium", "hard")


def _tasks_by_iteration(root: Path) -> dict[int, list[Task]]:
    folders = sorted(p for p in root.glob("iter_*") if (p / "tasks.jsonl").exists())
    return {int(p.name[5:]): [Task.from_dict(d) for d in read_jsonl(p / "tasks.jsonl")] for p in folders}


def plot_solver_and_domains(metrics: list[dict], tasks: dict[int, list[Task]], path: Path) -> Path:
    """Two panels: the Solver's GRPO reward by term over its steps, and the accepted tasks per domain."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4))
    steps = [m for m in metrics if m.get("phase") == "solver_trl" and "reward" in m]
    for key, label in (("reward", "r_S"), ("rewards/solver_format_reward_func/mean", "r_fmt"),
                       ("rewards/solver_accuracy_reward_func/mean", "r_acc")):  # fmt: skip
        ax1.plot([m.get(key, 0.0) for m in steps], label=label)
    ax1.set(title="Solver reward by term (TRL logs)", xlabel="Solver GRPO step (all iterations)", ylabel="mean")
    ax1.legend(fontsize=8)
    domains = sorted({t.spec.domain for ts in tasks.values() for t in ts if t.spec and not t.id.startswith("exemplar-")})
    width = 0.8 / max(len(tasks), 1)
    for k, (iteration, ts) in enumerate(tasks.items()):
        counts = Counter(t.spec.domain for t in ts if t.spec and not t.id.startswith("exemplar-"))
        ax2.bar([i + k * width for i in range(len(domains))], [counts[d] for d in domains], width, label=f"iter {iteration}")
    ax2.set_xticks(range(len(domains)), domains, rotation=60, ha="right", fontsize=7)
    ax2.set(title="Accepted tasks per domain (exemplar top-ups not counted)", ylabel="tasks")
    if domains:
        ax2.legend(fontsize=8)
    else:  # an empty chart would look like a plotting bug; say what it means
        ax2.text(0.5, 0.5, "no generated task was accepted", ha="center", va="center", transform=ax2.transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _example(task: Task) -> str:
    calls = json.dumps([{"name": c.name, "arguments": c.arguments} for c in task.gold_calls], ensure_ascii=False)
    tools = ", ".join(t.name for t in task.tools)
    return f"- **{task.question.strip()}**  \n  tools: {tools}  \n  gold calls: `{calls}`"


def render_report(run_dir: str | Path, examples_per_band: int = 2) -> Path:
    """Write `report.md` (+ `curriculum.png`, `report.png`) for a run directory; returns the report's path."""
    from toolr0_lite.evaluate import table
    from toolr0_lite.plots import plot_curriculum

    root = Path(run_dir)
    if not (root / "metrics.jsonl").exists():
        raise FileNotFoundError(f"{root} has no metrics.jsonl: not a run directory (the --out of `toolr0-lite run`)")
    metrics = read_jsonl(root / "metrics.jsonl")
    tasks = _tasks_by_iteration(root)
    plot_curriculum(root)
    plot_solver_and_domains(metrics, tasks, root / "report.png")

    lines = [f"# Self-play report: `{root.name}`", "", "![curriculum](curriculum.png)", "", "![report](report.png)", ""]
    lines += ["## Synthesis per iteration", "",
              "| iteration | candidates | sound | held out | agreed | selected | + exemplars | no-call | easy / medium / hard | top reject reasons |",
              "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for m in (m for m in metrics if m.get("phase") == "synthesis"):
        mix = " / ".join(str(m["difficulty"].get(b, 0)) for b in BANDS)
        reasons = ", ".join(f"{k} {v}" for k, v in list(m["reject_reasons"].items())[:3])
        lines.append(f"| {m['iteration']} | {m['candidates']} | {m['verified_unique']} | {m.get('heldout', 0)} | {m['agreed']} "
                     f"| {m['selected']} | {m['topped_up_with_exemplars']} | {m['no_call_tasks']} | {mix} | {reasons} |")  # fmt: skip
    generator = [m for m in metrics if m.get("phase") == "generator"]
    if generator:
        lines += ["", "## Generator reward terms (mean over its GRPO steps, per iteration)", "",
                  "| iteration | steps | parse rate | r_fmt | r_valid | r_diff | r_sem | r_G |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for it in sorted({m["iteration"] for m in generator}):
            ms = [m for m in generator if m["iteration"] == it]

            def mean(key: str) -> str:
                return f"{sum(m[key] for m in ms) / len(ms):.3f}"

            lines.append(f"| {it} | {len(ms)} | {mean('parse_rate')} | {mean('mean_format')} | {mean('mean_validity')} "
                         f"| {mean('mean_difficulty')} | {mean('mean_semantic')} | {mean('mean_reward')} |")  # fmt: skip
    for iteration, ts in tasks.items():
        lines += ["", f"## Example tasks, iteration {iteration}", ""]
        for band in (*BANDS, None):
            chosen = [t for t in ts if t.difficulty == band][:examples_per_band]
            if chosen:
                lines += [f"*{band or 'unlabelled (exemplar top-up)'}*", ""] + [_example(t) for t in chosen] + [""]
    summary_path = root / "eval" / "summary.json"
    if summary_path.exists():
        summary = json.loads(summary_path.read_text())
        lines += ["", "## Evaluation (`toolr0-lite eval`)", "", "```", table(summary["variants"]), "```", "",
                  "![bfcl](eval/bfcl.png)"]  # fmt: skip
    path = root / "report.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path

