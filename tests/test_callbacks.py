import copy

import keras
import numpy as np
import pandas as pd
import pytest
from conftest import run_python
from sklearn.datasets import make_friedman1

import archguide as ag
from archguide.exceptions import ArchguideWarning, ConfigError, DataError
from archguide.model.callbacks import LOG_KEYS, training_callbacks

INFORMATIVE = [f"x{i}" for i in range(5)]
NOISE = [f"x{i}" for i in range(5, 50)]


@pytest.fixture(scope="module")
def friedman50():
    """Friedman #1 with 45 noise features, standardised target; train / validation split."""
    X, y = make_friedman1(n_samples=4000, n_features=50, noise=1.0, random_state=0)
    X, y = X.astype("float32"), ((y - y.mean()) / y.std()).astype("float32")
    return X[:3000], y[:3000], X[3000:], y[3000:]


@pytest.fixture(scope="module")
def plan50(friedman50):
    X, y, _, _ = friedman50
    return ag.plan_architecture(ag.score_features(X, y, random_state=0), total_units=64)


@pytest.fixture(scope="module")
def trained(friedman50, plan50):
    """An archguide model trained 20 epochs with gradient re-scoring and penalty updates."""
    X, y, Xv, yv = friedman50
    keras.utils.set_random_seed(0)
    model = ag.build_model(plan50, seed=0)
    cb = ag.ImportanceRescoring((Xv, yv), method="gradient")
    history = model.fit(X, y, epochs=20, batch_size=64, verbose=0, validation_data=(Xv, yv), callbacks=[cb])
    return model, cb, history


def _small(plan50, friedman50, **options):
    X, y, Xv, yv = friedman50
    model = ag.build_model(plan50, seed=0)
    return model, ag.ImportanceRescoring((Xv, yv), **options), X[:512], y[:512]


# ------------------------------------------------------------------ behaviour


@pytest.mark.slow
@pytest.mark.parametrize("method", ["gradient", "permutation", "ablation"])
def test_after_training_informative_features_outrank_45_noise_features(trained, friedman50, method):
    model, _, _ = trained
    _, _, Xv, yv = friedman50
    imp = ag.network_importance(model, Xv, yv, method=method, random_state=0)
    assert imp[INFORMATIVE].min() > imp[NOISE].max(), imp.sort_values(ascending=False).head(8)


@pytest.mark.slow
def test_rescoring_drives_noise_gates_far_below_informative_ones(trained):
    model, cb, history = trained
    gates = np.abs(model.get_layer("gate").get_gates())
    features = list(model.get_layer("gate").feature_names)
    informative = gates[[features.index(f) for f in INFORMATIVE]]
    noise = gates[[features.index(f) for f in NOISE]]
    assert informative.min() > 0.5
    assert informative.mean() > 10 * noise.mean()  # about 25x seen
    # The strengths the callback set follow the plan's rule: strongest on noise.
    last = cb.strengths_history_.iloc[-1]
    assert last[NOISE].min() > 10 * last[INFORMATIVE].max()
    # One history row per epoch, and the summary numbers reached History.
    assert len(cb.history_) == 20 and cb.history_["epoch"].tolist() == list(range(1, 21))
    for key in LOG_KEYS[:2]:
        assert key in history.history
    assert "n_overfit_features" not in history.history  # counted only with training_data
    assert history.history["importance_tau"][-1] > 0.8  # the ranking has settled
    # The penalty is in val_loss but not in val_data_loss.
    assert history.history["val_loss"][-1] > history.history["val_data_loss"][-1]


@pytest.mark.slow
def test_strengths_survive_save_and_load(trained, tmp_path):
    model, _, _ = trained
    model.save(tmp_path / "m.keras")
    run_python(
        f"""
        import numpy as np, keras, archguide
        m = keras.models.load_model({str(tmp_path / "m.keras")!r})
        np.save({str(tmp_path / "s.npy")!r}, m.get_layer("gate").get_strengths())
        """
    )
    np.testing.assert_array_equal(np.load(tmp_path / "s.npy"), model.get_layer("gate").get_strengths())


class _Interrupt(keras.callbacks.Callback):
    def __init__(self, at_epoch):
        super().__init__()
        self.at_epoch = at_epoch
        self.strengths = None

    def on_epoch_end(self, epoch, logs=None):
        self.strengths = self.model.get_layer("gate").get_strengths()

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at_epoch:
            raise RuntimeError("interrupted")


def test_strengths_survive_a_backup_and_restore_resume(plan50, friedman50, tmp_path):
    model, cb, X, y = _small(plan50, friedman50)
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    stop = _Interrupt(at_epoch=2)
    with pytest.raises(RuntimeError, match="interrupted"):
        model.fit(X, y, epochs=4, verbose=0, callbacks=[cb, stop, backup])
    assert not np.allclose(stop.strengths, [plan50.l1_strengths[f] for f in plan50.features])  # re-scored
    resumed, cb2, _, _ = _small(plan50, friedman50)
    resumed.fit(X, y, epochs=2, verbose=0, callbacks=[cb2, keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))])
    np.testing.assert_allclose(resumed.get_layer("gate").get_strengths(), stop.strengths)


def test_consecutive_fits_do_not_mix_histories(plan50, friedman50):
    model, cb, X, y = _small(plan50, friedman50, every_n_epochs=2)
    model.fit(X, y, epochs=4, verbose=0, callbacks=[cb])
    assert cb.history_["epoch"].tolist() == [2, 4]
    model.fit(X, y, epochs=2, verbose=0, callbacks=[cb])
    assert cb.history_["epoch"].tolist() == [2]
    assert len(cb.strengths_history_) == 1


def test_logs_reach_csv_logger(plan50, friedman50, tmp_path):
    model, cb, X, y = _small(plan50, friedman50, every_n_epochs=2, training_data=friedman50[:2])
    path = tmp_path / "log.csv"
    model.fit(X, y, epochs=3, verbose=0, callbacks=[cb, keras.callbacks.CSVLogger(str(path))])
    log = pd.read_csv(path)
    assert set(LOG_KEYS) <= set(log.columns)
    assert log["importance_tau"].isna().all()  # a single re-scoring: nothing to compare yet
    assert log["gate_penalty"].notna().all()
    assert log["n_overfit_features"].isna().tolist() == [True, False, False]  # carried over after epoch 2


def test_training_data_flags_a_feature_the_network_overfits():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 4)).astype("float32")
    y_train = (2 * X[:400, 0] + X[:400, 1]).astype("float32")
    y_val = X[400:, 1].astype("float32")  # on held-out rows, x0 carries nothing
    plan = ag.plan_architecture(ag.score_features(X[:400], y_train, random_state=0, groups=None), total_units=16)
    model = ag.build_model(plan, seed=0)
    model.fit(X[:400], y_train, epochs=30, verbose=0)
    cb = ag.ImportanceRescoring(
        (X[400:], y_val), method="permutation", training_data=(X[:400], y_train), update_penalties=False
    )
    model.fit(X[:400], y_train, epochs=1, verbose=0, callbacks=[cb])
    assert "x0" in cb.overfit_features_
    assert "x1" not in cb.overfit_features_
    assert len(cb.training_history_) == 1


def test_update_penalties_false_leaves_strengths_alone(plan50, friedman50):
    model, cb, X, y = _small(plan50, friedman50, update_penalties=False)
    before = model.get_layer("gate").get_strengths()
    model.fit(X, y, epochs=2, verbose=0, callbacks=[cb])
    np.testing.assert_array_equal(model.get_layer("gate").get_strengths(), before)
    assert len(cb.history_) == 2


def test_plain_sequential_is_rescored_without_a_gate(friedman50):
    X, y, Xv, yv = friedman50
    model = keras.Sequential([keras.Input((50,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    cb = ag.ImportanceRescoring((Xv, yv), method="olden")
    model.fit(X[:256], y[:256], epochs=2, verbose=0, callbacks=[cb])
    assert len(cb.history_) == 2 and cb.strengths_history_.empty


def test_tensorboard_logs_are_written(plan50, friedman50, tmp_path):
    model, _, X, y = _small(plan50, friedman50)
    cb = ag.ImportanceRescoring((friedman50[2], friedman50[3]), log_dir=str(tmp_path / "tb"))
    model.fit(X, y, epochs=1, verbose=0, callbacks=[cb])
    files = list((tmp_path / "tb").glob("events.out.tfevents*"))
    assert files and files[0].stat().st_size > 0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"tensors": 0}).Reload()
    tags = events.Tags()["tensors"]
    assert "importance/x0" in tags and "l1_strength/x49" in tags


def test_non_finite_predictions_skip_the_rescoring_with_a_warning(plan50, friedman50):
    model, cb, X, y = _small(plan50, friedman50)
    out = model.get_layer("output")
    out.kernel.assign(np.full(out.kernel.shape, np.nan, dtype="float32"))
    with pytest.warns(ArchguideWarning, match="not finite"):
        model.fit(X, y, epochs=2, verbose=0, callbacks=[cb])
    assert cb.history_.empty  # every re-scoring was skipped, training ran to the end


def test_deepcopy_is_light_and_starts_fresh(plan50, friedman50):
    model, cb, X, y = _small(plan50, friedman50)
    model.fit(X, y, epochs=1, verbose=0, callbacks=[cb])
    clone = copy.deepcopy(cb)
    assert clone.model is None and clone.history_.empty
    assert clone.validation_data[0] is cb.validation_data[0]  # data shared, not copied
    assert len(cb.history_) == 1  # the original is untouched
    other = ag.build_model(plan50, seed=1)
    other.fit(X, y, epochs=1, verbose=0, callbacks=[clone])
    assert len(clone.history_) == 1


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"method": "shap"}, "method"),
        ({"every_n_epochs": 0}, "every_n_epochs"),
        ({"smoothing": 1.0}, r"smoothing, expected a number in \[0, 1\)"),
        ({"max_rows": 0}, "max_rows"),
    ],
)
def test_bad_options(options, match, friedman50):
    with pytest.raises(ConfigError, match=match):
        ag.ImportanceRescoring((friedman50[2], friedman50[3]), **options)


def test_validation_data_must_be_a_pair():
    with pytest.raises(DataError, match="pair"):
        ag.ImportanceRescoring(np.ones((4, 2)))


def test_mismatched_validation_data_fails_at_the_start_of_training(plan50, friedman50):
    X, y, Xv, yv = friedman50
    model = ag.build_model(plan50, seed=0)
    cb = ag.ImportanceRescoring((Xv[:, :10], yv))
    with pytest.raises(DataError, match=r"shape \(1000, 10\).*\(n_samples, 50\)"):
        model.fit(X[:64], y[:64], epochs=1, verbose=0, callbacks=[cb])


def test_multi_input_models_are_refused():
    a, b = keras.Input((2,)), keras.Input((2,))
    model = keras.Model([a, b], keras.layers.Dense(1)(keras.layers.Concatenate()([a, b])))
    model.compile("adam", "mse")
    cb = ag.ImportanceRescoring((np.ones((8, 4), "float32"), np.ones(8)))
    with pytest.raises(DataError, match="2 inputs"):
        model.fit([np.ones((8, 2)), np.ones((8, 2))], np.ones(8), epochs=1, verbose=0, callbacks=[cb])


# ------------------------------------------------------------------ soundness


def _rescore_twice(model, cb):
    """Run the callback's hooks on a fixed model: two re-scorings with the same weights."""
    cb.set_model(model)
    cb.on_train_begin()
    cb.on_epoch_end(0)
    cb.on_epoch_end(1)
    return cb.raw_history_.drop(columns="epoch")


def test_each_rescoring_draws_fresh_shuffles_and_a_seed_repeats_the_run(plan50, friedman50):
    model, cb, _, _ = _small(plan50, friedman50, method="permutation", update_penalties=False, random_state=3)
    first = _rescore_twice(model, cb)
    # Same weights, new shuffles: the two re-scorings differ (they were identical when the seed was reused).
    assert not np.allclose(first.iloc[0], first.iloc[1])
    # The integer seed makes a new fit repeat the same sequence of shuffles.
    pd.testing.assert_frame_equal(_rescore_twice(model, cb), first)


def test_a_random_state_instance_works_with_more_rows_than_max_rows(plan50, friedman50):
    X, y, Xv, yv = friedman50
    model = ag.build_model(plan50, seed=0)
    cb = ag.ImportanceRescoring(
        (Xv, yv), method="permutation", max_rows=200, random_state=np.random.RandomState(0), update_penalties=False
    )
    first = _rescore_twice(model, cb)
    assert len(first) == 2 and np.isfinite(first.to_numpy()).all()


def test_l1_none_keeps_the_plans_scale_when_strengths_are_zero(plan50, friedman50):
    """Scenario 3: L1 on the weak features only. One re-scoring must not zero every strength."""
    model, cb, X, y = _small(plan50, friedman50, every_n_epochs=1)
    gate = model.get_layer("gate")
    gate.set_strengths([plan50.l1_strengths[f] if f in plan50.weak else 0.0 for f in plan50.features])
    model.fit(X, y, epochs=1, verbose=0, callbacks=[cb])
    assert cb.l1_ == plan50.options["l1"]
    strengths = gate.get_strengths()
    assert strengths.min() == pytest.approx(plan50.options["l1"], rel=1e-4)  # the top feature gets exactly l1
    assert strengths.max() > 10 * strengths.min()  # about 20x after one epoch


def test_l1_fallback_for_a_gate_built_without_a_scale(friedman50):
    X, y, Xv, yv = friedman50

    def model_with_gate(strengths):
        inputs = keras.Input((50,))
        x = ag.FeatureGate(strengths=strengths, name="gate")(inputs)
        model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Dense(8, activation="relu")(x)))
        model.compile("adam", "mse")
        return model

    model = model_with_gate([0.0] * 25 + [0.02] * 24 + [0.005])
    cb = ag.ImportanceRescoring((Xv, yv))
    model.fit(X[:256], y[:256], epochs=1, verbose=0, callbacks=[cb])
    assert cb.l1_ == pytest.approx(0.005)  # the smallest positive strength, not 0
    with pytest.raises(ConfigError, match="Pass l1"):
        model_with_gate(None).fit(X[:64], y[:64], epochs=1, verbose=0, callbacks=[ag.ImportanceRescoring((Xv, yv))])
    cb = ag.ImportanceRescoring((Xv, yv), update_penalties=False)
    model_with_gate(None).fit(X[:64], y[:64], epochs=1, verbose=0, callbacks=[cb])
    assert cb.l1_ is None and len(cb.history_) == 1


def test_validation_frame_is_matched_to_the_gate_by_name(plan50, friedman50):
    X, y, Xv, yv = friedman50
    frame = pd.DataFrame(Xv, columns=list(plan50.features))
    reordered = frame[frame.columns[::-1]]
    by_array = _rescore_twice(ag.build_model(plan50, seed=0), ag.ImportanceRescoring((Xv, yv)))
    by_frame = _rescore_twice(ag.build_model(plan50, seed=0), ag.ImportanceRescoring((reordered, pd.Series(yv))))
    np.testing.assert_allclose(by_frame[by_array.columns].to_numpy(), by_array.to_numpy(), rtol=1e-4, atol=1e-7)
    model = ag.build_model(plan50, seed=0)
    cb = ag.ImportanceRescoring((frame.rename(columns={"x0": "age"}), yv))
    with pytest.raises(DataError, match="missing 'x0'; unexpected 'age'"):
        model.fit(X[:64], y[:64], epochs=1, verbose=0, callbacks=[cb])


def test_bad_random_state_is_refused_at_construction(friedman50):
    with pytest.raises(ConfigError, match="random_state"):
        ag.ImportanceRescoring((friedman50[2], friedman50[3]), random_state="abc")


@pytest.mark.parametrize("smoothing", [0.0, 0.5, 0.8])
def test_smoothing_is_an_exponential_moving_average_of_the_raw_scores(plan50, friedman50, smoothing):
    model, cb, _, _ = _small(plan50, friedman50, method="permutation", update_penalties=False, smoothing=smoothing)
    raw = _rescore_twice(model, cb)
    smoothed = cb.history_.drop(columns="epoch")
    np.testing.assert_allclose(smoothed.iloc[0], raw.iloc[0])
    np.testing.assert_allclose(smoothed.iloc[1], smoothing * raw.iloc[0] + (1 - smoothing) * raw.iloc[1])


@pytest.mark.parametrize(
    ("losses", "ours", "keras_own"),
    [
        # each epoch a little lower, never 1% below the loss at epoch 0: stop after 3, keep the lowest
        # (Keras' own trains on and keeps the last)
        ([1.0, 0.998, 0.996, 0.994, 0.992, 0.991], (3, 3), (None, 5)),
        # epoch 2 falls 2%: the patience restarts there
        ([1.0, 0.995, 0.98, 0.979, 0.978, 0.977], (5, 5), (None, 5)),
        # no fall after epoch 1: both stop at epoch 4 and keep epoch 1
        ([1.0, 0.98, 0.99, 0.981, 0.985, 0.97], (4, 1), (4, 1)),
    ],
)
def test_min_improvement_restarts_the_patience_only_on_a_relative_fall(losses, ours, keras_own):
    def stop_with(min_improvement):
        callbacks, _ = training_callbacks(
            None, method=None, every_n_epochs=1, l1_power=1.0, random_state=0,
            lr_patience=None, patience=3, min_improvement=min_improvement,
        )  # fmt: skip
        model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
        model.stop_training = False
        stopping = callbacks[-1]
        stopping.set_model(model)
        stopping.on_train_begin()
        for epoch, loss in enumerate(losses):
            model.set_weights([np.full((1, 1), float(epoch)), np.zeros(1)])  # weights that name the epoch
            stopping.on_epoch_end(epoch, {"val_data_loss": loss})
            if model.stop_training:
                break
        stopping.on_train_end()
        return epoch if model.stop_training else None, int(model.get_weights()[0][0, 0])

    assert stop_with(0.01) == ours  # (the epoch it stopped at, the epoch whose weights it kept)
    assert stop_with(0.0) == keras_own  # Keras' own: any fall restarts the patience
