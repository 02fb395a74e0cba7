"""Does an importance-aware search beat the default plan? And does a long search hold its memory?

Search (the default run): on each data set, in one process,

- archguide's default estimator (one fit);
- ``estimator.tune(max_trials=20)``: KerasTuner's RandomSearch (tune's default; with
  ``--tuner bayesian``, BayesianOptimization) over ``ImportanceHyperModel``'s space (budget,
  tiers or groups, depth, L1 scale and power, weak handling, dropout, learning rate,
  re-scoring method and period), then the best refitted;
- KerasTuner's BayesianOptimization searching a plain MLP with the same trial budget (its 4
  options: random draws for 12 trials, then its Gaussian process): width (16-256),
  depth (1-3), dropout (0-0.5), learning rate (1e-4-1e-2, log), standardised inputs (and
  target), early stopping on the validation loss (patience 20, best weights restored), then the
  best refitted on the same training rows.

Every model sees the same training rows (its own 20% of them held out for validation) and is
judged on the same 20% test rows. Data (shipped with scikit-learn or synthesized):

- Friedman #1: 2,000 rows, 5 informative features of 50, noise 1.0 (test MSE);
- breast cancer (569 rows, 30 features) with 20 standard-normal noise columns (test accuracy
  and log loss).

Memory (``--memory``): a RandomSearch of 30 small trials (Friedman #1, 500 rows x 20 features, 5
epochs each) with the resident set size after every trial.

Usage:
    python benchmarks/bench_tuning.py [--seeds 0] [--trials 20] [--tuner random]  # ~25 min per seed, 2 cores
    python benchmarks/bench_tuning.py --tuner bayesian random --no-plain   # the default tuner
    python benchmarks/bench_tuning.py --memory                    # about 3 minutes
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import keras_tuner as kt
import numpy as np
import pandas as pd
from bench_estimators import friedman  # Friedman #1, 2,000 rows x 50 (5 informative), noise 1.0
from sklearn.datasets import load_breast_cancer, make_friedman1
from sklearn.metrics import accuracy_score, log_loss, mean_squared_error
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import archguide as ag

EPOCHS, PATIENCE = 300, 20


def cancer_noise(seed):
    X, y = load_breast_cancer(return_X_y=True)
    noise = np.random.default_rng(seed).normal(size=(len(X), 20))
    return np.hstack([X, noise]), y, "classification"


DATA = {"friedman": ("Friedman #1 (50 features)", friedman), "cancer": ("breast cancer + 20 noise", cancer_noise)}


def rss_mib() -> float:
    """The process's resident set size now, in MiB."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:  # not Linux
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class PlainMLP(kt.HyperModel):
    """What a KerasTuner user searches by hand: width, depth, dropout and learning rate of an MLP."""

    def __init__(self, n_features, task):
        super().__init__()
        self.n_features, self.task = n_features, task

    def build(self, hp):
        width = hp.Int("width", 16, 256, sampling="log", default=64)
        depth = hp.Int("depth", 1, 3, default=2)
        dropout = hp.Float("dropout", 0.0, 0.5, default=0.0)
        lr = hp.Float("learning_rate", 1e-4, 1e-2, sampling="log", default=1e-3)
        inputs = keras.Input((self.n_features,))
        x = inputs
        for i in range(depth):
            x = keras.layers.Dense(max(4, width // 2**i), activation="relu")(x)
            if dropout:
                x = keras.layers.Dropout(dropout)(x)
        regression = self.task == "regression"
        out = keras.layers.Dense(1, activation=None if regression else "sigmoid")(x)
        model = keras.Model(inputs, out)
        model.compile(keras.optimizers.Adam(lr), loss="mse" if regression else "binary_crossentropy")
        return model

    def fit(self, hp, model, *args, **kwargs):
        stop = keras.callbacks.EarlyStopping(patience=PATIENCE, restore_best_weights=True)
        return model.fit(*args, callbacks=[*kwargs.pop("callbacks", []), stop], **kwargs)


def plain_search(X_tr, y_tr, X_te, task, seed, trials):
    """KerasTuner over PlainMLP, the best refitted on the training rows; test predictions."""
    scaler = StandardScaler().fit(X_tr)
    Xs, Xt = scaler.transform(X_tr).astype("float32"), scaler.transform(X_te).astype("float32")
    y_mean, y_std = (y_tr.mean(), y_tr.std()) if task == "regression" else (0.0, 1.0)
    ys = ((y_tr - y_mean) / y_std).astype("float32")
    fit_rows, val_rows = train_test_split(
        np.arange(len(Xs)), test_size=0.2, random_state=seed, stratify=None if task == "regression" else y_tr
    )
    hm = PlainMLP(Xs.shape[1], task)
    with tempfile.TemporaryDirectory() as directory:
        tuner = kt.BayesianOptimization(
            hm, objective="val_loss", max_trials=trials, directory=directory, seed=seed, overwrite=True
        )
        keras.utils.set_random_seed(seed)
        tuner.search(
            Xs[fit_rows], ys[fit_rows], validation_data=(Xs[val_rows], ys[val_rows]),
            epochs=EPOCHS, batch_size=64, verbose=0,
        )  # fmt: skip
        best = tuner.get_best_hyperparameters(1)[0]
    keras.utils.set_random_seed(seed)
    model = hm.build(best)
    hm.fit(best, model, Xs[fit_rows], ys[fit_rows], validation_data=(Xs[val_rows], ys[val_rows]),
           epochs=EPOCHS, batch_size=64, verbose=0)  # fmt: skip
    out = model.predict(Xt, verbose=0).ravel()
    return (out * y_std + y_mean) if task == "regression" else out, model.count_params()


def output(model, X_te, task):
    """The regressor's predictions, or the classifier's probability of class 1."""
    return model.predict(X_te) if task == "regression" else model.predict_proba(X_te)[:, 1]


def evaluate(task, y_te, predicted):
    if task == "regression":
        return {"test MSE": mean_squared_error(y_te, predicted)}
    proba = np.clip(predicted, 1e-7, 1 - 1e-7)
    return {"accuracy": accuracy_score(y_te, (proba > 0.5).astype(int)), "log loss": log_loss(y_te, proba)}


def search_table(seeds, trials, tuners=("random",), data=None, plain=True):
    rows = []
    for key, (name, make) in DATA.items():
        if data and key not in data:
            continue
        for seed in seeds:
            X, y, task = make(seed)
            strat = None if task == "regression" else y
            X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, random_state=seed, stratify=strat)
            cls = ag.ImportanceGuidedRegressor if task == "regression" else ag.ImportanceGuidedClassifier

            start = time.perf_counter()
            default = cls(random_state=seed).fit(X_tr, y_tr)
            seconds = time.perf_counter() - start
            rows.append({"data": name, "seed": seed, "model": "archguide default", "seconds": seconds,
                         "params": default.plan_.n_params(),
                         **evaluate(task, y_te, output(default, X_te, task))})  # fmt: skip

            for tuner in tuners:
                start = time.perf_counter()
                tuned = cls(random_state=seed).tune(X_tr, y_tr, max_trials=trials, tuner=tuner)
                seconds = time.perf_counter() - start
                rows.append({"data": name, "seed": seed, "model": f"archguide tune ({tuner}), {trials} trials",
                             "seconds": seconds, "params": tuned.plan_.n_params(),
                             **evaluate(task, y_te, output(tuned, X_te, task))})  # fmt: skip
                best = tuned.tuning_results_.iloc[0]
                print(
                    f"{name}, seed {seed}, {tuner}: best trial {best.drop(['score', 'status']).to_dict()}", flush=True
                )

            if plain:
                start = time.perf_counter()
                predicted, n_params = plain_search(X_tr, y_tr, X_te, task, seed, trials)
                seconds = time.perf_counter() - start
                rows.append({"data": name, "seed": seed, "model": f"KerasTuner plain MLP, {trials} trials",
                             "seconds": seconds, "params": n_params, **evaluate(task, y_te, predicted)})  # fmt: skip
            print(pd.DataFrame(rows[-(1 + len(tuners) + plain) :]).to_string(index=False), flush=True)
    frame = pd.DataFrame(rows)
    metrics = [c for c in ("test MSE", "accuracy", "log loss") if c in frame]
    summary = frame.groupby(["data", "model"], sort=False).agg(
        **{m: (m, lambda v: f"{v.mean():.3f} ± {v.std(ddof=0):.3f}" if v.notna().any() else "") for m in metrics},
        seconds=("seconds", lambda v: f"{v.mean():.1f}"),
        params=("params", lambda v: f"{v.mean():.0f}"),
    )
    print(f"\nSearch study: seeds {list(seeds)}, {trials} trials per search (mean ± spread over seeds)")
    print(summary.to_string())
    for name in frame["data"].unique():
        part = frame[frame["data"] == name].groupby("model", sort=False).mean(numeric_only=True)
        metric = "test MSE" if "test MSE" in part and part["test MSE"].notna().all() else "accuracy"
        d = part.loc["archguide default"]
        for tuner in tuners:
            t = part.loc[f"archguide tune ({tuner}), {trials} trials"]
            better = (t[metric] < d[metric]) if metric == "test MSE" else (t[metric] > d[metric])
            line = (f"{name}: tuned ({tuner}) vs default {metric} {t[metric]:.3f} vs {d[metric]:.3f} "
                    f"({'better' if better else 'not better'}); "
                    f"time tuned / default {t['seconds'] / d['seconds']:.1f}x")  # fmt: skip
            if plain:
                p = part.loc[f"KerasTuner plain MLP, {trials} trials"]
                ratio = t["seconds"] / p["seconds"]
                line += f"; vs plain MLP search {p[metric]:.3f}, time tuned / plain search {ratio:.1f}x"
            print(line)


def memory_table(n_trials=30):
    X, y = make_friedman1(n_samples=500, n_features=20, noise=1.0, random_state=0)
    X, y = X.astype("float32"), ((y - y.mean()) / y.std()).astype("float32")
    scores = ag.score_features(X[:400], y[:400], random_state=0)
    hypermodel = ag.ImportanceHyperModel(scores, seed=0)
    readings = []

    class Reading(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            readings.append(rss_mib())

    start_rss = rss_mib()
    with tempfile.TemporaryDirectory() as directory, warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        tuner = kt.RandomSearch(hypermodel, objective=hypermodel.objective, max_trials=n_trials,
                                directory=directory, seed=0)  # fmt: skip
        start = time.perf_counter()
        tuner.search(X[:400], y[:400], validation_data=(X[400:], y[400:]), epochs=5, callbacks=[Reading()], verbose=0)
        seconds = time.perf_counter() - start
    shown = [1, 2, 5, 10, 15, 20, 25, 30]
    table = pd.DataFrame(
        {
            "trial": [t for t in shown if t <= len(readings)],
            "RSS MiB": [f"{readings[t - 1]:.0f}" for t in shown if t <= len(readings)],
        }  # fmt: skip
    )
    print(f"\nMemory over {len(readings)} RandomSearch trials (Friedman #1, 400 training rows x 20, 5 epochs each; "
          f"{seconds:.0f} s; RSS before the search {start_rss:.0f} MiB)")  # fmt: skip
    print(table.to_string(index=False))
    tail = readings[9:]
    slope = np.polyfit(np.arange(len(tail)), tail, 1)[0] if len(tail) > 1 else float("nan")
    print(f"growth from trial 10 to {len(readings)}: {readings[-1] - readings[9]:+.0f} MiB "
          f"({slope:+.1f} MiB per trial, least squares)")  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--tuner", nargs="+", default=["random"], choices=["random", "bayesian", "hyperband"],
                        help="archguide's tuners, a row each (the plain MLP search: bayesian)")  # fmt: skip
    parser.add_argument("--data", nargs="+", choices=sorted(DATA), help="only these data sets")
    parser.add_argument("--no-plain", action="store_true", help="leave out the plain-MLP search")
    parser.add_argument("--memory", action="store_true", help="only the memory table")
    args = parser.parse_args()
    if args.memory:
        memory_table()
    else:
        search_table(args.seeds, args.trials, args.tuner, args.data, not args.no_plain)


if __name__ == "__main__":
    main()
