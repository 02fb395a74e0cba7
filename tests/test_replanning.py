"""Adaptive re-planning: the network's importance in the plan's terms, the trigger, warm starts, the estimators."""

import os
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import archguide as ag
from archguide import ConfigError
from archguide.model.replanning import ReplanTrigger, moved_features, network_scores, replan_from, warm_start

keras = pytest.importorskip("keras")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _data(n=400, seed=0):
    """y = 3 x0 + 2 x1 + x2 + noise; x3..x7 are noise."""
    rng = np.random.RandomState(seed)
    X = pd.DataFrame(rng.randn(n, 8), columns=[f"x{i}" for i in range(8)])
    return X, 3 * X["x0"] + 2 * X["x1"] + X["x2"] + 0.3 * rng.randn(n)


@pytest.fixture(scope="module")
def scored():
    X, y = _data()
    scores = ag.score_features(X, y, random_state=0, groups=None)
    return scores, ag.plan_architecture(scores, total_units=32)


def _misled(scores, feature="x0", into="x7"):
    """``scores`` as a misleading proxy would give them: ``feature`` swapped with ``into`` and called weak."""
    importances = scores.importances.copy()
    importances[feature], importances[into] = scores.importances[into], scores.importances[feature]
    weak = scores.weak.copy()
    weak[feature], weak[into] = True, False
    return scores.__class__(**{**scores.__dict__, "importances": importances, "weak": weak})


def test_network_scores_keep_the_scale_and_take_the_networks_ranking_and_weak_set(scored):
    scores, _ = scored
    network = pd.Series([0.1, 0.9, 0.5, 0.0, 0.001, 0.2, 0.3, 0.04], index=scores.features)
    mapped = network_scores(scores, network, weak=[], weak_ratio=0.05)
    ranked = np.sort(scores.importances.to_numpy())[::-1]
    order = network.sort_values(ascending=False, kind="stable").index
    np.testing.assert_array_equal(mapped.importances[order].to_numpy(), ranked)
    assert mapped.weak[mapped.weak].index.tolist() == ["x3", "x4", "x7"]  # below 0.045
    # hysteresis: a weak feature leaves the weak set only at free_ratio of the largest (0.225 here)
    kept = network_scores(scores, network, weak=["x5", "x6"], weak_ratio=0.05, free_ratio=0.25)
    assert kept.weak[kept.weak].index.tolist() == ["x3", "x4", "x5", "x7"]
    # by default the network's importance frees nothing: x6 at a third of the largest stays weak
    stuck = network_scores(scores, network, weak=["x5", "x6"], weak_ratio=0.05)
    assert stuck.weak[stuck.weak].index.tolist() == ["x3", "x4", "x5", "x6", "x7"]
    assert mapped.groups == scores.groups and "network" in mapped.decisions[0]
    with pytest.raises(ConfigError, match="no value for"):
        network_scores(scores, network.drop("x2"))


def test_a_plan_from_the_same_ranking_moves_nothing_and_a_promoted_feature_moves(scored):
    scores, plan = scored
    same = network_scores(scores, scores.importances.clip(lower=0) + 1e-9)
    assert moved_features(plan, replan_from(plan, same)) == []
    assert replan_from(plan, same).options == plan.options
    misled = _misled(scores)
    plan_misled = ag.plan_architecture(misled, total_units=32)
    assert "x0" in plan_misled.weak
    network = scores.importances  # the network ranks as the true scores do
    # by default the network's importance demotes x7 but cannot free x0 (that takes the residual check)
    demoted = replan_from(plan_misled, network_scores(misled, network))
    assert "x7" in moved_features(plan_misled, demoted) and "x0" in demoted.weak
    freed = replan_from(plan_misled, network_scores(misled, network, free_ratio=0.25))
    assert set(moved_features(plan_misled, freed)) >= {"x0", "x7"}


class _Rescoring:
    """Stands in for ImportanceRescoring: a new smoothed importance each epoch."""

    def __init__(self, series_per_epoch):
        self.series = series_per_epoch
        self.n_rescorings_ = 0
        self.importance_ = None

    def step(self):
        self.importance_ = self.series[self.n_rescorings_]
        self.n_rescorings_ += 1


def _run_trigger(plan, scores, series, **options):
    rescoring = _Rescoring(series)
    trigger = ReplanTrigger(rescoring, plan, scores, **options)
    trigger.set_model(SimpleNamespace(stop_training=False))
    trigger.on_train_begin()
    for epoch in range(len(series)):
        rescoring.step()
        trigger.on_epoch_end(epoch)
        if trigger.model.stop_training:
            break
    return trigger


def test_the_trigger_fires_when_the_same_features_move_in_a_row_and_not_otherwise(scored):
    scores, plan = scored
    agree = scores.importances.clip(lower=0) + 1e-9
    swapped = agree.copy()
    swapped["x0"], swapped["x7"] = agree["x7"], agree["x0"]
    # the network agrees with the plan: no re-plan, however long
    assert _run_trigger(plan, scores, [agree] * 20).new_plan_ is None
    # it disagrees from epoch 1 on: a re-plan after `patience` re-scorings, not before min_epochs
    fired = _run_trigger(plan, scores, [swapped] * 20, patience=3, min_epochs=5)
    # x0 joins the weak set; x7, weak noise that the network rates highest, is not freed by it
    assert fired.epoch_ == 5 and fired.moved_ == ["x0"] and "x7" in fired.new_plan_.weak
    assert fired.new_plan_ == replan_from(plan, network_scores(scores, swapped))
    assert _run_trigger(plan, scores, [swapped] * 20, patience=3, min_epochs=0).epoch_ == 3
    # a disagreement that does not last resets the count
    flicker = [swapped, swapped, agree] * 6
    assert _run_trigger(plan, scores, flicker, patience=3, min_epochs=0).new_plan_ is None
    with pytest.raises(ConfigError, match="patience"):
        ReplanTrigger(None, plan, scores, patience=0)


def test_warm_start_keeps_the_weights_of_branches_that_carry_over(scored):
    scores, plan = scored
    ranking = pd.Series(np.arange(8.0)[::-1], index=scores.features)
    new_plan = replan_from(plan, network_scores(scores, ranking, free_ratio=0.25))
    old = ag.build_model(plan, seed=0)
    old.fit(np.random.RandomState(0).randn(64, 8), np.zeros(64), epochs=1, verbose=0)
    new = ag.build_model(new_plan, seed=1)
    matches = warm_start(new, old, new_plan, plan)
    freed = [i for i, f in enumerate(plan.features) if f in plan.weak and f not in new_plan.weak]
    assert freed  # the new plan frees weak features: their gates start again at 1, the others carry over
    expected = old.get_layer("gate").get_gates().copy()
    expected[freed] = 1.0
    np.testing.assert_array_equal(new.get_layer("gate").get_gates(), expected)
    np.testing.assert_allclose(
        new.get_layer("gate").get_strengths(), [new_plan.l1_strengths[f] for f in plan.features], rtol=1e-6
    )  # the new plan's strengths (float32)
    for branch in new_plan.branches:
        source = next(b for b in plan.branches if b.name == matches[branch.name])
        new_kernel = new.get_layer(f"branch_{branch.name}_dense_1").get_weights()[0]
        old_kernel = old.get_layer(f"branch_{source.name}_dense_1").get_weights()[0]
        units = min(new_kernel.shape[1], old_kernel.shape[1])
        for i, feature in enumerate(branch.features):
            if feature in source.features:
                j = source.features.index(feature)
                np.testing.assert_array_equal(new_kernel[i, :units], old_kernel[j, :units])
    same = ag.build_model(plan, seed=2)
    warm_start(same, old, plan, plan)  # the same plan: every weight carries over
    for a, b in zip(same.get_weights(), old.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_warm_start_carries_an_ensembles_member_scales_and_output_layers(scored):
    scores, plan = scored
    old = ag.build_model(plan, seed=0, ensemble_size=4)
    old.fit(np.random.RandomState(0).randn(64, 8), np.zeros(64), epochs=1, verbose=0)
    same = ag.build_model(plan, seed=2, ensemble_size=4)
    warm_start(same, old, plan, plan)
    for a, b in zip(same.get_weights(), old.get_weights()):
        np.testing.assert_array_equal(a, b)
    ranking = pd.Series(np.arange(8.0)[::-1], index=scores.features)
    new_plan = replan_from(plan, network_scores(scores, ranking, free_ratio=0.25))
    new = ag.build_model(new_plan, seed=1, ensemble_size=4)
    warm_start(new, old, new_plan, plan)
    np.testing.assert_array_equal(new.get_layer("ensemble_adapter").scales, old.get_layer("ensemble_adapter").scales)


def test_warm_start_carries_a_category_embedding_whose_block_is_unchanged():
    from conftest import make_scores

    levels = [f"c={i}" for i in range(12)]
    scores = make_scores({"a": 0.6, **{f: 0.1 for f in levels}, "b": 0.05})
    options = {"n_tiers": 1, "head_units": 8, "category_embedding": 4, "categorical": {"c": levels}}
    plan = ag.plan_architecture(scores, total_units=16, **options)
    X = np.eye(len(plan.features), dtype="float32")[np.arange(64) % len(plan.features)]
    old = ag.build_model(plan, seed=0)
    old.fit(X, np.arange(64.0) % 3, epochs=1, verbose=0)
    same = ag.build_model(plan, seed=2)
    warm_start(same, old, plan, plan)
    np.testing.assert_array_equal(same.predict(X, verbose=0), old.predict(X, verbose=0))
    wider = ag.plan_architecture(scores, total_units=24, **options)  # more units, the same block
    new = ag.build_model(wider, seed=1)
    warm_start(new, old, wider, plan)
    name = f"branch_{plan.branches[0].name}_category_0"
    np.testing.assert_array_equal(new.get_layer(name).get_weights()[0], old.get_layer(name).get_weights()[0])
    kernel_new = new.get_layer(f"branch_{plan.branches[0].name}_dense_1").get_weights()[0]
    kernel_old = old.get_layer(f"branch_{plan.branches[0].name}_dense_1").get_weights()[0]
    np.testing.assert_array_equal(kernel_new[:, :16], kernel_old)  # a, b and the four embedding rows


# ------------------------------------------------------------------ the estimators

FAST = {"epochs": 40, "n_repeats": 2, "total_units": 32, "patience": 10, "groups": None}


@pytest.fixture(scope="module")
def replanned():
    """A regressor whose proxy was misled (x0, the strongest, called weak and swapped with noise x7)."""
    from unittest import mock

    X, y = _data()
    real = ag.score_features

    def misleading(*args, **kwargs):
        return _misled(real(*args, **kwargs))

    with mock.patch("archguide.estimators.estimator.score_features", misleading):
        est = ag.ImportanceGuidedRegressor(random_state=0, replan="residuals", max_replans=2, **FAST).fit(X, y)
    return est, X, y


def test_a_misled_plan_is_replanned_from_the_residuals_and_the_history_shows_it(replanned):
    est, X, y = replanned
    assert 2 <= len(est.plans_) <= 3, [p["epoch"] for p in est.plans_]  # max_replans=2 bounds it
    first, last = est.plans_[0], est.plans_[-1]
    # x0's signal, starved in the weak tier, is in the residuals: the residual check frees it
    assert "x0" in first["plan"].weak and "x0" not in last["plan"].weak
    assert any("x0" in p["moved"] for p in est.plans_[1:])
    assert all(p["reason"] == "residuals" for p in est.plans_[1:]) and est.plan_ is last["plan"]
    epochs = [p["epoch"] for p in est.plans_]
    assert epochs == sorted(epochs) and all(b - a >= 10 for a, b in zip(epochs, epochs[1:]))
    plan_of_epoch = np.asarray(est.history_["plan"])
    assert len(plan_of_epoch) == est.n_epochs_ == len(est.history_["data_loss"])
    for i, (start, end) in enumerate(zip(epochs, [*epochs[1:], est.n_epochs_])):
        assert (plan_of_epoch[start:end] == i).all()
    assert est.best_epoch_ > last["epoch"]
    assert est.rescoring_history_["epoch"].is_monotonic_increasing
    assert est.score(X, y) > 0.95


def test_a_misled_plan_without_replan_stays_misled_and_fits_worse(replanned):
    from unittest import mock

    est, X, y = replanned
    real = ag.score_features
    with mock.patch("archguide.estimators.estimator.score_features", lambda *a, **k: _misled(real(*a, **k))):
        stuck = ag.ImportanceGuidedRegressor(random_state=0, replan=False, **FAST).fit(X, y)
    assert len(stuck.plans_) == 1 and "x0" in stuck.plan_.weak
    X_new, y_new = _data(400, seed=1)
    assert est.score(X_new, y_new) > stuck.score(X_new, y_new)


def test_a_replan_that_does_worse_is_discarded_and_the_better_network_kept():
    from unittest import mock

    X, y = _data()

    def misleading_replan(self, network, plan, scores, *args):
        wrong = _misled(_misled(scores), "x1", "x6")  # the two strongest called weak: a re-plan for the worse
        return replan_from(plan, wrong), wrong, ["x0", "x1"]

    with mock.patch.object(ag.ImportanceGuidedRegressor, "_residual_replan", misleading_replan):
        est = ag.ImportanceGuidedRegressor(random_state=0, max_replans=1, **FAST).fit(X, y)
    first, second = est.plans_
    assert second["reason"] == "residuals" and {"x0", "x1"} <= set(second["plan"].weak)  # it was trained ...
    assert first["kept"] and not second["kept"] and est.plan_ is first["plan"]  # ... and discarded
    val = np.asarray(est.history_["val_data_loss"])
    assert val[second["epoch"] :].min() > val[: second["epoch"]].min()
    assert est.best_epoch_ == int(np.argmin(val[: second["epoch"]])) + 1  # the first network's best epoch
    assert est.score(X, y) > 0.95
    assert {"x0", "x1"}.isdisjoint(est.plan_.weak)


def test_a_saved_model_with_a_replan_history_loads_and_predicts_identically(replanned, tmp_path):
    est, X, _ = replanned
    est.save(tmp_path / "m.keras")
    loaded = ag.load(tmp_path / "m.keras")
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    assert [p["epoch"] for p in loaded.plans_] == [p["epoch"] for p in est.plans_]
    assert [p["plan"] for p in loaded.plans_] == [p["plan"] for p in est.plans_]
    assert loaded.plans_[1]["moved"] == est.plans_[1]["moved"]
    assert [p["kept"] for p in loaded.plans_] == [p["kept"] for p in est.plans_] and loaded.plan_ == est.plan_


def test_the_networks_importance_moves_the_noise_the_proxy_put_first_and_frees_nothing():
    from unittest import mock

    X, y = _data()
    real = ag.score_features
    with mock.patch("archguide.estimators.estimator.score_features", lambda *a, **k: _misled(real(*a, **k))):
        est = ag.ImportanceGuidedRegressor(random_state=0, replan=True, max_replans=1, **FAST).fit(X, y)
    assert [p["reason"] for p in est.plans_] == ["scores", "network importance"]
    assert "x7" in est.plans_[0]["plan"].branches[0].features  # the proxy's misled first tier
    assert "x7" in est.plans_[1]["moved"] and "x7" not in est.plan_.branches[0].features
    assert set(est.plan_.weak) >= set(est.plans_[0]["plan"].weak)  # no weak feature left the weak set


def test_without_replan_nothing_is_replanned_and_the_options_are_checked():
    X, y = _data(200)
    est = ag.ImportanceGuidedRegressor(random_state=0, replan=False, **{**FAST, "epochs": 10}).fit(X, y)
    assert len(est.plans_) == 1 and "plan" not in est.history_ and est.plans_[0]["plan"] is est.plan_
    with pytest.raises(ConfigError, match="rescoring"):
        ag.ImportanceGuidedRegressor(replan=True, rescoring=None).fit(X, y)
    with pytest.raises(ConfigError, match="max_replans"):
        ag.ImportanceGuidedRegressor(replan=True, max_replans=-1).fit(X, y)
    with pytest.raises(ConfigError, match="replan"):
        ag.ImportanceGuidedRegressor(replan="network").fit(X, y)


def test_the_run_directory_and_report_show_the_replans(replanned, tmp_path):
    est, X, y = replanned
    run_dir = ag.save_run(est, tmp_path / "run", X=X, y=y)
    run = ag.load_run(run_dir)
    assert [p["epoch"] for p in run.plans] == [p["epoch"] for p in est.plans_]
    report = (run_dir / "report.md").read_text(encoding="utf-8")
    assert f"## Re-plans ({len(est.plans_) - 1})" in report and "residuals" in report
    history = pd.read_csv(run_dir / "history.csv")
    assert history["plan"].tolist() == est.history_["plan"]
