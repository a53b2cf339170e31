"""The figures, checked without eyes: integer ticks, iteration marks, every labelled line, words in empty panels."""

import pytest

from toolr0_lite.plots import bfcl_figure, curriculum_figure, learning_figure, report_figure

pytest.importorskip("matplotlib")


def metrics(iterations: int = 3, steps: int = 4) -> list[dict]:
    """A hand-made run: Generator and Solver steps over several iterations, one synthesis each."""
    rows = []
    for it in range(iterations):
        for step in range(steps):
            rows.append({"iteration": it, "phase": "generator", "step": step, "mean_reward": 0.5 + 0.1 * step,
                         "mean_format": 0.5, "mean_validity": 0.5, "mean_difficulty": 0.0, "mean_semantic": 0.5})  # fmt: skip
            rows.append({"iteration": it, "phase": "solver", "step": step, "mean_reward": 1.0, "mean_format": 1.0,
                         "mean_accuracy": 0.0})  # fmt: skip
        rows.append({"iteration": it, "phase": "synthesis", "candidates": 16, "verified_unique": 8, "agreed": 4,
                     "selected": 4, "topped_up_with_exemplars": 0 if it else 2,
                     "difficulty": {"easy": 1, "medium": 2, "hard": 1}})  # fmt: skip
    return rows


def drawn(fig):
    fig.canvas.draw()
    return fig.axes


def integer_ticks(ax, axis: str = "x") -> bool:
    labels = [t.get_text().replace("−", "-") for t in getattr(ax, f"get_{axis}ticklabels")() if t.get_text()]
    return bool(labels) and all(label.lstrip("-").isdigit() for label in labels)


def test_curriculum_figure_has_integer_steps_iteration_marks_and_every_term():
    generator, funnel, difficulty = drawn(curriculum_figure(metrics(), "demo"))
    assert integer_ticks(generator) and integer_ticks(funnel) and integer_ticks(difficulty)
    assert [line.get_label() for line in generator.get_lines() if not line.get_label().startswith("_")] == \
        ["r_G", "r_fmt", "r_valid", "r_diff", "r_sem"]  # fmt: skip
    boundaries = [line for line in generator.get_lines() if line.get_label().startswith("_")]
    assert len(boundaries) == 2  # between iterations 0|1 and 1|2
    assert {line.get_linestyle() for line in generator.get_lines()[:5]} != {"-"}  # overlapping lines stay apart
    assert "exemplar top-up" in [t.get_text() for t in difficulty.get_legend().get_texts()]
    assert [t.get_text() for t in funnel.texts][:3] == ["16", "16", "16"]  # values on the bars


def test_an_empty_panel_says_why_and_has_no_axis():
    generator, funnel, difficulty = drawn(curriculum_figure([m for m in metrics(1) if m["phase"] != "synthesis"]))
    assert generator.axison and not funnel.axison and not difficulty.axison
    assert "no synthesis yet" in [t.get_text() for t in funnel.texts]
    solver, domains = drawn(report_figure(metrics(2), {0: {}, 1: {}}))
    assert integer_ticks(solver) and not domains.axison
    assert any("no generated task" in t.get_text() for t in domains.texts)


def test_bfcl_bars_carry_values_and_not_run_differs_from_zero():
    summaries = {"base": {"bfcl": {"categories": {"simple_python": {"accuracy": 0.0}, "irrelevance": {"accuracy": 0.5}}}},
                 "trained": {"bfcl": {"categories": {"simple_python": {"accuracy": 0.25}}}}}  # fmt: skip
    (ax,) = drawn(bfcl_figure(summaries, ["simple_python", "irrelevance"]))
    assert [t.get_text() for t in ax.texts] == ["0", "50", "25", "not run"]


def test_learning_figure_draws_seeds_their_mean_and_the_base():
    rows = [{"seed": s, "after": a, "heldout_reward": 0.5 + 0.1 * i + 0.01 * s, "accept_rate": None if a == "base" else 0.2}
            for s in (0, 1) for i, a in enumerate(("base", "iter_00", "iter_01"))]  # fmt: skip
    reward, accept, missing = drawn(learning_figure(rows, ("heldout_reward", "accept_rate", "bfcl_overall")))[:3]
    labels = [line.get_label() for line in reward.get_lines()]
    assert "mean of 2 seed(s)" in labels and "base" in labels and len(reward.get_lines()) == 4
    assert [t.get_text() for t in reward.get_xticklabels()] == ["base", "iter_00", "iter_01"]
    assert "base" not in [line.get_label() for line in accept.get_lines()]  # no base value: no base line
    assert not missing.axison and "not measured" in missing.texts[0].get_text()
    assert reward.get_ylim()[0] < 0 < 2 < reward.get_ylim()[1] and accept.get_ylim()[1] < 1.1  # whole ranges


def test_a_learning_measure_without_a_known_range_is_autoscaled():
    rows = [{"seed": 0, "after": a, "minutes": v, "generator_train_reward": 1.3, "solver_menu_effect": 0.1,
             "fit_reward_after": 1.4, "solver_change": v / 50}
            for a, v in (("iter_00", 3.1), ("iter_01", 3.3))]  # fmt: skip
    measures = ("minutes", "generator_train_reward", "solver_menu_effect", "fit_reward_after", "solver_change")
    panel, generator, effect, fit, change = drawn(learning_figure(rows, measures))[:5]
    assert 3.0 < panel.get_ylim()[0] < panel.get_ylim()[1] < 3.5
    assert generator.get_ylim()[0] < 0 < 3 < generator.get_ylim()[1]  # r_G's whole range, 0-3
    assert effect.get_ylim()[0] < -1 < 1 < effect.get_ylim()[1]  # a difference of two shares, -1 to 1
    assert fit.get_ylim()[0] < 0 < 2 < fit.get_ylim()[1]  # the Solver's fit is r_S, 0-2
    assert change.get_ylim()[0] < 0 < 0.066 < change.get_ylim()[1] < 0.07  # a distance: from 0 to its largest value
