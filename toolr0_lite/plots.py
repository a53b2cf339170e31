"""Figures of a run's curriculum, drawn from its metrics.jsonl (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

from toolr0_lite.rundir import read_jsonl


def plot_curriculum(root: Path) -> Path:
    """Three panels: Generator reward terms over steps, the synthesis funnel and the difficulty mix per iteration.

    Reads the run directory `root` without opening it as a RunDir (that may cut back a run still being written).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = read_jsonl(root / "metrics.jsonl")
    steps = [m for m in metrics if m.get("phase") == "generator"]
    synthesis = [m for m in metrics if m.get("phase") == "synthesis"]
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(15, 4))

    for term in ("mean_reward", "mean_format", "mean_validity", "mean_difficulty", "mean_semantic"):
        ax1.plot([m[term] for m in steps], label=term.removeprefix("mean_"))
    ax1.set(title="Generator reward by term", xlabel="Generator GRPO step (all iterations)", ylabel="mean")
    ax1.legend(fontsize=8)

    stages = ("candidates", "verified_unique", "agreed", "selected")
    width = 0.8 / len(stages)
    for k, stage in enumerate(stages):
        ax2.bar([m["iteration"] + k * width for m in synthesis], [m[stage] for m in synthesis], width, label=stage)
    ax2.set(title="Synthesis funnel", xlabel="iteration", ylabel="tasks")
    ax2.legend(fontsize=8)

    bottom = [0] * len(synthesis)
    for label in ("easy", "medium", "hard"):
        counts = [m["difficulty"].get(label, 0) for m in synthesis]
        ax3.bar([m["iteration"] for m in synthesis], counts, bottom=bottom, label=label)
        bottom = [b + c for b, c in zip(bottom, counts)]
    ax3.set(title="Difficulty of the Solver's tasks", xlabel="iteration", ylabel="tasks")
    ax3.legend(fontsize=8)

    fig.tight_layout()
    path = root / "curriculum.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
