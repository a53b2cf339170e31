"""Every figure the kit draws, in one style (matplotlib, no display needed).

- `curriculum.png` (after a run): the Generator's reward by term over its steps, the synthesis funnel and the
  difficulty mix per iteration;
- `report.png` (`toolr0-lite report`): the Solver's reward by term over its steps, accepted tasks per domain;
- `bfcl.png` (`toolr0-lite eval`): accuracy per BFCL category and variant;
- `learning.png` (the learning benchmarks): one panel per measure over the checkpoints.

One style throughout: a colour per role and per reward term, markers and line styles so overlapping lines stay
apart, integer ticks for steps and iterations, iteration boundaries marked on step axes, values on bars,
"not run" written where there is no value (a bar of height 0 means 0), and a panel with nothing to draw says
so in words instead of showing an empty axis. Each `*_figure` function returns the figure (tests inspect it);
each `plot_*` function saves it.
"""

from __future__ import annotations

from pathlib import Path

from toolr0_lite.prompts import DIFFICULTIES
from toolr0_lite.rundir import read_jsonl

TERMS = {  # label: (colour, line style, marker); the same term looks the same in every figure
    "r_G": ("black", "-", "o"), "r_fmt": ("tab:blue", "--", "s"), "r_valid": ("tab:green", "-.", "^"),
    "r_diff": ("tab:red", ":", "v"), "r_sem": ("tab:purple", (0, (5, 1)), "D"),
    "r_S": ("black", "-", "o"), "r_acc": ("tab:orange", "-.", "^"),
}  # fmt: skip
ROLES = {"generator": "tab:blue", "solver": "tab:orange"}
DIFFICULTY_COLOURS = dict(zip(DIFFICULTIES, ("#8cc084", "#f2c14e", "#e4572e")))
VARIANTS = ("tab:gray", "tab:orange", "tab:blue", "tab:green", "tab:purple")  # bar colours: base first


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _integer_ticks(ax, axis: str = "x") -> None:
    from matplotlib.ticker import MaxNLocator

    getattr(ax, f"{axis}axis").set_major_locator(MaxNLocator(integer=True))


def _nothing(ax, message: str) -> None:
    """An empty panel says what is missing, in words, with no meaningless axis."""
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, transform=ax.transAxes, fontsize=10, color="0.35")


def _lines_by_step(ax, steps: list[dict], terms: dict[str, str], title: str, xlabel: str) -> None:
    """Reward terms over global steps 1…N, with the iteration boundaries marked and labelled."""
    if not steps:
        _nothing(ax, f"no {xlabel.split()[0]} steps yet")
        return
    x = list(range(1, len(steps) + 1))
    values = [m.get(key, 0.0) for m in steps for key in terms.values()]
    ax.set_ylim(min(0.0, *values) - 0.05, max(1.0, *values) * 1.3 + 0.05)  # headroom for the legend and labels
    for k, (label, key) in enumerate(terms.items()):
        colour, style, marker = TERMS[label]
        # Markers on every len(terms)-th step, shifted per term: lines lying on each other still show each marker.
        ax.plot(x, [m.get(key, 0.0) for m in steps], color=colour, linestyle=style, marker=marker, markersize=6,
                markevery=(k % len(x), len(terms)) if len(x) > len(terms) else None, label=label, alpha=0.9)  # fmt: skip
    iterations = [m["iteration"] for m in steps]
    for i in range(1, len(steps)):
        if iterations[i] != iterations[i - 1]:
            ax.axvline(i + 0.5, color="0.6", linestyle=":", linewidth=1)
    for it in dict.fromkeys(iterations):
        first = iterations.index(it) + 1
        ax.annotate(f"iter {it}", (first, 1.0), xycoords=("data", "axes fraction"), fontsize=8, color="0.4",
                    xytext=(0, -11), textcoords="offset points")  # fmt: skip
    _integer_ticks(ax)
    ax.set(title=title, xlabel=xlabel, ylabel="mean over the step's completions")
    ax.legend(fontsize=8, loc="upper center", ncol=len(terms), bbox_to_anchor=(0.5, 0.93))


def curriculum_figure(metrics: list[dict], name: str = ""):
    """Three panels: Generator reward by term over its steps, synthesis funnel, difficulty mix per iteration."""
    plt = _pyplot()
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(16, 4.3))
    steps = [m for m in metrics if m.get("phase") == "generator"]
    _lines_by_step(ax1, steps, {"r_G": "mean_reward", "r_fmt": "mean_format", "r_valid": "mean_validity",
                                "r_diff": "mean_difficulty", "r_sem": "mean_semantic"},
                   "Generator reward by term", "Generator GRPO step")  # fmt: skip
    synthesis = [m for m in metrics if m.get("phase") == "synthesis"]
    if synthesis:
        stages = {"candidates": "candidates", "sound, unique": "verified_unique", "agreed": "agreed", "selected": "selected"}
        width = 0.8 / len(stages)
        for k, (label, key) in enumerate(stages.items()):
            bars = ax2.bar([m["iteration"] + (k - 1.5) * width for m in synthesis], [m[key] for m in synthesis], width,
                           label=label, color=plt.cm.Blues(0.35 + 0.18 * k))  # fmt: skip
            ax2.bar_label(bars, fontsize=7)
        _integer_ticks(ax2)
        top = max([m["candidates"] for m in synthesis] + [1])
        ax2.set(title="Synthesis funnel", xlabel="iteration", ylabel="tasks", ylim=(0, 1.4 * top))  # room for the legend
        _integer_ticks(ax2, "y")
        ax2.legend(fontsize=8, ncol=2, loc="upper center")
        bottom = [0] * len(synthesis)
        for label in DIFFICULTIES:
            counts = [m["difficulty"].get(label, 0) for m in synthesis]
            ax3.bar([m["iteration"] for m in synthesis], counts, 0.6, bottom=bottom, label=label,
                    color=DIFFICULTY_COLOURS[label])  # fmt: skip
            bottom = [b + c for b, c in zip(bottom, counts)]
        exemplars = [m.get("topped_up_with_exemplars", 0) for m in synthesis]
        if any(exemplars):
            ax3.bar([m["iteration"] for m in synthesis], exemplars, 0.6, bottom=bottom, label="exemplar top-up",
                    color="0.8", hatch="//")  # fmt: skip
        _integer_ticks(ax3)
        _integer_ticks(ax3, "y")
        top = max([b + e for b, e in zip(bottom, exemplars)] + [1])
        ax3.set(title="The Solver's tasks by difficulty", xlabel="iteration", ylabel="tasks", ylim=(0, 1.4 * top))
        ax3.legend(fontsize=8, ncol=2, loc="upper center")
    else:
        _nothing(ax2, "no synthesis yet")
        _nothing(ax3, "no Solver tasks yet")
    fig.suptitle(f"Curriculum of run {name}" if name else "Curriculum")
    fig.tight_layout()
    return fig


def plot_curriculum(root: Path) -> Path:
    """curriculum.png of a run directory, read without opening it as a RunDir (it may still be running)."""
    return _save(curriculum_figure(read_jsonl(root / "metrics.jsonl"), Path(root).name), root / "curriculum.png")


def report_figure(metrics: list[dict], domains: dict[int, dict[str, int]], name: str = ""):
    """Two panels: the Solver's reward by term over its steps, accepted generated tasks per domain and iteration."""
    plt = _pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 4.3))
    steps = [m for m in metrics if m.get("phase") == "solver"]
    _lines_by_step(ax1, steps, {"r_S": "mean_reward", "r_fmt": "mean_format", "r_acc": "mean_accuracy"},
                   "Solver reward by term", "Solver GRPO step")  # fmt: skip
    names = sorted({d for counts in domains.values() for d in counts})
    if names:
        width = 0.8 / len(domains)
        for k, (iteration, counts) in enumerate(sorted(domains.items())):
            ax2.bar([i + k * width for i in range(len(names))], [counts.get(d, 0) for d in names], width,
                    label=f"iter {iteration}", color=plt.cm.Oranges(0.4 + 0.5 * k / max(len(domains), 1)))  # fmt: skip
        ax2.set_xticks([i + 0.4 - width / 2 for i in range(len(names))], names, rotation=60, ha="right", fontsize=7)
        _integer_ticks(ax2, "y")
        ax2.set(title="Accepted generated tasks per domain (exemplar top-ups not counted)", ylabel="tasks")
        ax2.legend(fontsize=8)
    else:
        _nothing(ax2, "no generated task was accepted: the Solver trained on exemplar top-ups, if any")
    fig.suptitle(f"Solver of run {name}" if name else "Solver")
    fig.tight_layout()
    return fig


def bfcl_figure(summaries: dict[str, dict], categories: list[str], title: str = "BFCL (AST) and irrelevance"):
    """Bars per category (and aggregate) and variant, each with its value; "not run" where a variant has none."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(categories)), 4.3))
    width = 0.8 / len(summaries)
    for k, (variant, summary) in enumerate(summaries.items()):
        bfcl = summary.get("bfcl", {})
        values = [bfcl.get("categories", {}).get(c, {}).get("accuracy", bfcl.get("aggregates", {}).get(c)) for c in categories]
        x = [i + k * width for i in range(len(categories))]
        bars = ax.bar(x, [100 * v if v is not None else 0 for v in values], width, label=variant,
                      color=VARIANTS[k % len(VARIANTS)])  # fmt: skip
        ax.bar_label(bars, [f"{100 * v:.0f}" if v is not None else "not run" for v in values], fontsize=7,
                     rotation=90 if len(summaries) > 2 else 0)  # fmt: skip
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(categories))], categories, rotation=30, ha="right")
    ax.set(ylabel="accuracy (%)", title=title, ylim=(0, 110))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def learning_figure(rows: list[dict], measures: tuple[str, ...], title: str = "Learning curve"):
    """One panel per measure over the checkpoints (base, iter_00, …): seeds thin, their mean bold, the base's
    mean dashed across the panel; a measure with no value anywhere says so."""
    plt = _pyplot()
    stages = list(dict.fromkeys(r["after"] for r in rows))
    columns = 4
    fig, axes = plt.subplots(-(-len(measures) // columns), columns, figsize=(4.4 * columns, 3.2 * -(-len(measures) // columns)),
                             squeeze=False)  # fmt: skip
    seeds = sorted({r["seed"] for r in rows})
    for ax, measure in zip(axes.flat, measures):
        got = {(r["seed"], r["after"]): r[measure] for r in rows if r.get(measure) is not None}
        if not got:
            _nothing(ax, f"{measure}: not measured")
            continue
        for seed in seeds:
            points = [(i, got[seed, s]) for i, s in enumerate(stages) if (seed, s) in got]
            ax.plot(*zip(*points), color=ROLES["solver"], linewidth=0.8, alpha=0.5, marker=".")
        means = [(i, sum(v) / len(v)) for i, s in enumerate(stages) if (v := [got[k] for k in got if k[1] == s])]
        ax.plot(*zip(*means), color="black", linewidth=2.2, marker="o", label=f"mean of {len(seeds)} seed(s)")
        base = [got[k] for k in got if k[1] == "base"]
        if base:
            ax.axhline(sum(base) / len(base), color="0.4", linestyle="--", linewidth=1, label="base")
        ax.set_xticks(range(len(stages)), stages, fontsize=8)
        ax.set_title(measure, fontsize=10)
        if scale := _scale(measure):  # the measure's whole range, so a small change looks small
            low, high = scale
            if high is None:  # a distance: up to its largest value drawn
                high = max(got.values()) or 1.0
            ax.set_ylim(low - 0.03 * high, high * 1.03)
    for ax in axes.flat[len(measures):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _scale(measure: str) -> tuple[float, float | None] | None:
    """The range a learning measure can take: the Generator reward r_G is 0-3, the Solver reward r_S 0-2 (its fit
    too); shares, rates and accuracies 0-1; a difference of two shares (the Solver's menu effect) -1 to 1; a
    distance (how far a phase moved the Solver) from 0 to its largest value drawn (None); None (autoscale) for the
    rest."""
    if measure == "generator_train_reward":
        return (0.0, 3.0)
    if measure in ("heldout_reward", "solver_train_reward") or measure.startswith("fit_reward"):
        return (0.0, 2.0)
    if measure.startswith("bfcl_") or measure.endswith(("_rate", "_match", "_accuracy", "_share", "p_hat")):
        return (0.0, 1.0)
    if measure.endswith("_effect"):
        return (-1.0, 1.0)
    if measure == "solver_change":
        return (0.0, None)
    return None


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=100)
    _pyplot().close(fig)
    return Path(path)


def plot_report(metrics: list[dict], domains: dict[int, dict[str, int]], path: Path, name: str = "") -> Path:
    return _save(report_figure(metrics, domains, name), path)


def plot_bfcl(summaries: dict[str, dict], categories: list[str], path: Path) -> Path:
    return _save(bfcl_figure(summaries, categories), path)


def plot_learning(rows: list[dict], measures: tuple[str, ...], path: Path, title: str = "Learning curve") -> Path:
    return _save(learning_figure(rows, measures, title), path)
