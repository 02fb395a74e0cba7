import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

import archguide as ag


@pytest.fixture(scope="module")
def friedman_scores(friedman):
    X, y = friedman
    return ag.score_features(X[:600], y[:600], random_state=0)


def test_plot_plan_draws_every_layer_with_its_units(friedman_scores, tmp_path):
    plan = ag.plan_architecture(friedman_scores, total_units=64, head_units=(16,))
    ax = ag.plot_plan(plan)
    labels = sorted(p.get_label() for p in ax.patches)
    expected = sorted(
        [f"{b.name} layer {i + 1}: {u}" for b in plan.branches for i, u in enumerate(b.units)] + ["head layer 1: 16"]
    )
    assert labels == expected
    texts = " ".join(t.get_text() for t in ax.texts)
    for branch in plan.branches:
        assert branch.name in texts
    # the widest layer is drawn tallest
    heights = {p.get_label(): p.get_height() for p in ax.patches}
    widest = max(plan.branches, key=lambda b: b.units[0])
    assert heights[f"{widest.name} layer 1: {widest.units[0]}"] == max(heights.values())
    ax.figure.savefig(tmp_path / "plan.png")
    assert (tmp_path / "plan.png").stat().st_size > 1000


def test_plot_plan_names_few_features_and_counts_the_rest(friedman_scores):
    plan = ag.plan_architecture(friedman_scores, total_units=64)
    ax = ag.plot_plan(plan, max_names=2)
    biggest = max(plan.branches, key=lambda b: len(b.features))
    assert any(f"(+{len(biggest.features) - 2})" in t.get_text() for t in ax.texts)
    penalties = [t.get_text() for t in ax.texts if t.get_text().startswith("L1 x")]
    assert len(penalties) == len(plan.branches)
    for text in penalties:  # a range only where the strengths differ
        parts = text[len("L1 x") :].split("-")
        assert len(parts) == 1 or parts[0] != parts[1]


def test_plot_history_from_a_mapping_splits_data_loss_and_penalty():
    history = {"loss": [3.0, 2.0, 1.5], "data_loss": [2.5, 1.6, 1.2], "val_data_loss": [2.7, 1.9, 1.4]}
    rescoring = pd.DataFrame({"epoch": [1, 2, 3], "a": [0.1, 0.2, 0.3], "b": [0.5, 0.4, 0.3], "c": [0, 0, 0.01]})
    fig = ag.plot_history(history, rescoring_history=rescoring, top=2)
    loss_ax, penalty_ax, imp_ax = fig.axes
    assert [line.get_label() for line in loss_ax.get_lines()] == ["training data loss", "validation data loss"]
    np.testing.assert_allclose(penalty_ax.get_lines()[0].get_ydata(), [0.5, 0.4, 0.3])
    assert sorted(line.get_label() for line in imp_ax.get_lines()) == ["a", "b"]  # the top 2 at the end
    assert len(ag.plot_history(history).axes) == 2


def test_plot_history_draws_the_strengths_of_the_features_it_draws_the_importance_of():
    history = {"loss": [3.0, 2.0], "data_loss": [2.5, 1.6], "val_data_loss": [2.7, 1.9]}
    rescoring = pd.DataFrame({"epoch": [1, 2], "a": [0.1, 0.3], "b": [0.5, 0.4], "c": [0.0, 0.01]})
    strengths = pd.DataFrame({"epoch": [1, 2], "a": [3e-3, 1e-3], "b": [1e-3, 1.5e-3], "c": [1e-2, 1e-2]})
    fig = ag.plot_history(history, rescoring_history=rescoring, strengths_history=strengths, top=2)
    assert len(fig.axes) == 4
    l1_ax = fig.axes[3]
    assert sorted(line.get_label() for line in l1_ax.get_lines()) == ["a", "b"]
    a = next(line for line in l1_ax.get_lines() if line.get_label() == "a")
    np.testing.assert_allclose(a.get_ydata(), [3e-3, 1e-3])
    assert l1_ax.get_yscale() == "log"
    # strengths alone: the weakest penalties (the features the network leans on)
    alone = ag.plot_history(history, strengths_history=strengths, top=2)
    assert sorted(line.get_label() for line in alone.axes[2].get_lines()) == ["a", "b"]
    grid = ag.plot_history(history, rescoring_history=rescoring, strengths_history=strengths, ncols=2)
    assert [ax.get_subplotspec().get_geometry()[:2] for ax in grid.axes] == [(2, 2)] * 4


def test_plot_history_of_a_fitted_estimator(friedman, tmp_path):
    X, y = friedman
    est = ag.ImportanceGuidedRegressor(epochs=3, random_state=0).fit(X[:300], y[:300])
    fig = ag.plot_history(est)
    assert len(fig.axes) == 4  # loss, penalty, importance, strengths
    assert len(fig.axes[3].get_lines()) == min(8, len(est.plan_.features))
    assert len(fig.axes[0].get_lines()[0].get_ydata()) == len(est.history_["data_loss"])
    fig.savefig(tmp_path / "history.png")
    assert (tmp_path / "history.png").stat().st_size > 1000


def test_plot_history_refuses_what_it_cannot_draw():
    with pytest.raises(TypeError, match="fitted archguide estimator or a training history.*list"):
        ag.plot_history([1, 2, 3])
    with pytest.raises(TypeError, match="ImportanceGuidedRegressor"):
        ag.plot_history(ag.ImportanceGuidedRegressor())


# ---------------------------------------------------------------------- readable as a person sees them


def _text_inside_the_figure(fig) -> list[str]:
    """Every visible title, axis label and legend entry whose drawn box leaves the figure (a clipped text)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    texts = [fig._suptitle] if fig._suptitle else []
    for ax in fig.axes:
        texts += [ax.title, ax.xaxis.label, ax.yaxis.label]
        legend = ax.get_legend()
        if legend is not None:
            texts += legend.get_texts()
    outside = []
    for text in texts:
        if not text.get_visible() or not text.get_text():
            continue
        extent = text.get_window_extent(renderer)
        if extent.x0 < box.x0 - 1 or extent.y0 < box.y0 - 1 or extent.x1 > box.x1 + 1 or extent.y1 > box.y1 + 1:
            outside.append(text.get_text())
    return outside


def _lines_under_legends(fig) -> list[str]:
    """Lines with a drawn point under their axes' legend."""
    fig.canvas.draw()
    covered = []
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is None:
            continue
        frame = legend.get_window_extent()
        for line in ax.get_lines():
            points = ax.transData.transform(np.column_stack([line.get_xdata(), line.get_ydata()]))
            inside = (points[:, 0] >= frame.x0) & (points[:, 0] <= frame.x1)
            if (inside & (points[:, 1] >= frame.y0) & (points[:, 1] <= frame.y1)).any():
                covered.append(f"{ax.get_title()}: {line.get_label()}")
    return covered


def _history_run():
    epochs = np.arange(1, 41)
    history = {"loss": list(1.0 / epochs + 0.2), "data_loss": list(1.0 / epochs), "val_data_loss": list(1.1 / epochs)}
    names = [f"a_rather_long_feature_name_{i}" for i in range(8)]
    rng = np.random.default_rng(0)
    rescoring = pd.DataFrame({"epoch": epochs, **{n: np.linspace(rng.random(), rng.random(), 40) for n in names}})
    strengths = pd.DataFrame({"epoch": epochs, **{n: np.linspace(1e-3, rng.random() * 1e-2, 40) for n in names}})
    return history, rescoring, strengths


def test_no_title_or_label_of_the_report_figures_is_clipped_or_missing(friedman_scores):
    history, rescoring, strengths = _history_run()
    long_names = friedman_scores  # the score chart: every feature named, groups in brackets
    figures = {
        "scores": ag.plot_scores(long_names).figure,
        "plan": ag.plot_plan(ag.plan_architecture(long_names, total_units=128)).figure,
        "history": ag.plot_history(
            history, rescoring_history=rescoring, strengths_history=strengths, ncols=2, task="regression"
        ),  # fmt: skip
    }
    for name, fig in figures.items():
        assert _text_inside_the_figure(fig) == [], name
        for ax in fig.axes:
            assert ax.get_title(), name
            if ax.axison:  # a drawn axis says what it shows
                assert ax.get_xlabel() and ax.get_ylabel(), (name, ax.get_title())
    assert _lines_under_legends(figures["history"]) == []


def test_the_loss_axis_says_which_units_the_loss_is_in():
    history, _, _ = _history_run()
    regression = ag.plot_history(history, task="regression").axes[0]
    assert "standardised" in regression.get_ylabel() and "std(y)" in regression.get_title()
    assert ag.plot_history(history, task="binary").axes[0].get_ylabel() == "log loss"


def test_plan_boxes_are_as_tall_as_their_units(friedman_scores):
    plan = ag.plan_architecture(friedman_scores, total_units=128, head_units=(32,))
    ax = ag.plot_plan(plan)
    heights = {int(p.get_label().rsplit(": ", 1)[1]): p.get_height() for p in ax.patches}
    assert len(heights) >= 3 and max(heights) / min(heights) >= 4  # a plan with layers of very different widths
    widest = max(heights)
    for units, height in heights.items():  # height in proportion to units (a 4-unit layer a 30th of a 120-unit one)
        if units / widest > 0.05:
            assert height / heights[widest] == pytest.approx(units / widest, rel=1e-6), units
        else:  # too thin to see at that ratio: drawn as a line, still the shortest
            assert height <= heights[widest] * 0.05 + 1e-9
