"""A run's curriculum as a report a person reads: `report.md` and its figures, in the run directory.

Everything comes from the records the loop already wrote (metrics.jsonl, iter_XX/tasks.jsonl, eval/summary.json),
so a report can be rendered for a finished run, a running one, or one copied from another machine.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from toolr0_lite.prompts import DIFFICULTIES
from toolr0_lite.records import Task
from toolr0_lite.rundir import atomic_write_text, iteration_index, read_jsonl


def _tasks_by_iteration(root: Path) -> dict[int, list[Task]]:
    folders = sorted(p for p in root.glob("iter_*") if (p / "tasks.jsonl").exists())
    return {iteration_index(p.name): [Task.from_dict(d) for d in read_jsonl(p / "tasks.jsonl")] for p in folders}


def _generated_domains(tasks: dict[int, list[Task]]) -> dict[int, Counter]:
    """Accepted generated tasks per domain, per iteration (exemplar top-ups are not the Generator's)."""
    return {it: Counter(t.spec.domain for t in ts if t.spec and not t.id.startswith("exemplar-")) for it, ts in tasks.items()}


def _example(task: Task) -> str:
    calls = json.dumps([{"name": c.name, "arguments": c.arguments} for c in task.gold_calls], ensure_ascii=False)
    tools = ", ".join(t.name for t in task.tools)
    return f"- **{task.question.strip()}**  \n  tools: {tools}  \n  gold calls: `{calls}`"


def render_report(run_dir: str | Path, examples_per_band: int = 2) -> Path:
    """Write `report.md` (+ `curriculum.png`, `report.png`) for a run directory; returns the report's path."""
    from toolr0_lite.evaluate import table
    from toolr0_lite.plots import plot_curriculum, plot_report

    root = Path(run_dir)
    if not (root / "metrics.jsonl").exists():
        raise FileNotFoundError(f"{root} has no metrics.jsonl: not a run directory (the --out of `toolr0-lite run`)")
    metrics = read_jsonl(root / "metrics.jsonl")
    tasks = _tasks_by_iteration(root)
    plot_curriculum(root)
    plot_report(metrics, _generated_domains(tasks), root / "report.png", root.name)

    lines = [f"# Self-play report: `{root.name}`", "", "![curriculum](curriculum.png)", "", "![report](report.png)", ""]
    lines += ["## Synthesis per iteration", "",
              "| iteration | candidates | sound | held out | agreed | selected | + exemplars | + no-call twins | no-call | easy / medium / hard | top reject reasons |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for m in (m for m in metrics if m.get("phase") == "synthesis"):
        mix = " / ".join(str(m["difficulty"].get(b, 0)) for b in DIFFICULTIES)
        reasons = ", ".join(f"{k} {v}" for k, v in list(m["reject_reasons"].items())[:3])
        lines.append(f"| {m['iteration']} | {m['candidates']} | {m['verified_unique']} | {m.get('heldout', 0)} | {m['agreed']} "
                     f"| {m['selected']} | {m['topped_up_with_exemplars']} | {m.get('no_call_twins', 0)} | {m['no_call_tasks']} | {mix} "
                     f"| {reasons} |")  # fmt: skip
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
        for band in (*DIFFICULTIES, None):
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

