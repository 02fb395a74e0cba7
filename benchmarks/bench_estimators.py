"""The default estimators against a plain Keras MLP (and, on Friedman #1, the oracle MLP).

Data, all shipped with scikit-learn or synthesized (nothing is downloaded):

- Friedman #1: 2,000 rows, 5 informative features of 50, noise 1.0; 20% test.
- wine (178 rows, 13 features) with 10 added standard-normal noise columns; 20% test, stratified.

Each is run over three seeds (data, split and models all follow the seed).
The reference MLPs are what a careful user writes by hand: standardised
inputs (and target, for regression), Dense 64-32 ReLU, Adam (learning rate
1e-3), batch 32, 20% of the training rows for early stopping on the
validation loss (patience 20, best weights restored), at most 300 epochs.
The oracle MLP is the same network fed only the 5 informative features.

Usage:
    python benchmarks/bench_estimators.py            # the table (about 3 minutes on 2 cores)
    python benchmarks/bench_estimators.py --study    # the defaults study (about 15 minutes): variants
    python benchmarks/bench_estimators.py --proxy    # the scoring proxy's effect downstream (about 7 minutes)
    python benchmarks/bench_estimators.py --companion   # the weak test's linear companion downstream
    python benchmarks/bench_estimators.py --replan   # re-planning from the residual check, off and on
    python benchmarks/bench_estimators.py --misled --jobs 2   # scores made wrong on purpose, and the natural
                                                              # misses (two fits at a time: about 30 minutes)
    python benchmarks/bench_estimators.py --configs [small wide classification]
                                                     # configs/<kind>.yaml against the defaults and the
                                                     # variants tried for it, on data of its kind
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pandas as pd
from peers import MODELS, PlainMLP  # PlainMLP, Dense 64-32, Adam, early stopping: the one reference MLP
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine, make_friedman1
from sklearn.metrics import accuracy_score, mean_squared_error
from sklearn.model_selection import train_test_split

import archguide as ag

SEEDS = (0, 1, 2)


def friedman(seed):
    X, y = make_friedman1(n_samples=2000, n_features=50, noise=1.0, random_state=seed)
    return X, y, "regression"


def wine_noise(seed):
    X, y = load_wine(return_X_y=True)
    noise = np.random.default_rng(seed).normal(size=(len(X), 10))
    return np.hstack([X, noise]), y, "classification"


def diabetes_noise(seed):
    X, y = load_diabetes(return_X_y=True)
    noise = np.random.default_rng(seed).normal(size=(len(X), 10))
    return np.hstack([X, noise]), y, "regression"


def breast_cancer(seed):
    X, y = load_breast_cancer(return_X_y=True)
    return X, y, "classification"


def split(X, y, task, seed):
    stratify = y if task == "classification" else None
    return train_test_split(X, y, test_size=0.2, random_state=seed, stratify=stratify)


def plain_mlp(X_tr, y_tr, task, seed):
    """The peer suite's reference MLP (``peers.PlainMLP``); returns (predict, n_params)."""
    model = PlainMLP(task, seed).fit(pd.DataFrame(X_tr), y_tr)
    return (lambda X: model.predict(pd.DataFrame(X))), model.model_.count_params()


def run_archguide(X_tr, y_tr, task, seed, **params):
    cls = ag.ImportanceGuidedRegressor if task == "regression" else ag.ImportanceGuidedClassifier
    est = cls(random_state=seed, **params).fit(X_tr, y_tr)
    n_params = sum(int(np.prod(w.shape)) for w in est.network_.trainable_weights)
    return est.predict, n_params


def evaluate(data, model, seeds=SEEDS, **params):
    """(metric per seed, fit seconds per seed, params of the last fit)."""
    metrics, seconds, n_params = [], [], 0
    for seed in seeds:
        X, y, task = data(seed)
        X_tr, X_te, y_tr, y_te = split(X, y, task, seed)
        if model == "oracle":
            X_tr, X_te = X_tr[:, :5], X_te[:, :5]
        start = time.perf_counter()
        if model == "archguide":
            predict, n_params = run_archguide(X_tr, y_tr, task, seed, **params)
        else:
            predict, n_params = plain_mlp(X_tr, y_tr, task, seed)
        seconds.append(time.perf_counter() - start)
        pred = predict(X_te)
        metrics.append(mean_squared_error(y_te, pred) if task == "regression" else accuracy_score(y_te, pred))
    return np.array(metrics), np.array(seconds), n_params


def row(data_name, model_name, metric_name, result):
    metrics, seconds, n_params = result
    return {
        "data": data_name,
        "model": model_name,
        metric_name: f"{metrics.mean():.3f} ± {metrics.std():.3f}",
        "fit s": f"{seconds.mean():.1f}",
        "params": n_params,
    }


def main_table():
    rows = []
    friedman_rows = [
        ("archguide default", evaluate(friedman, "archguide")),
        ("plain MLP 64-32", evaluate(friedman, "plain")),
        ("oracle MLP (5 informative)", evaluate(friedman, "oracle")),
    ]
    for name, result in friedman_rows:
        rows.append(row("Friedman #1 (50 features)", name, "test MSE", result))
    wine_rows = [
        ("archguide default", evaluate(wine_noise, "archguide")),
        ("plain MLP 64-32", evaluate(wine_noise, "plain")),
    ]
    for name, result in wine_rows:
        rows.append(row("wine + 10 noise", name, "accuracy", result))
    table = pd.DataFrame(rows).fillna("").set_index(["data", "model"])
    print(table.to_string())
    mse = friedman_rows[0][1][0].mean()
    plain_acc, ours_acc = wine_rows[1][1][0].mean(), wine_rows[0][1][0].mean()
    print()
    print(f"Friedman test MSE {mse:.3f} (target <= 1.25): {'met' if mse <= 1.25 else 'MISSED'}; ")
    print(f"wine accuracy {ours_acc:.3f} vs plain MLP {plain_acc:.3f}: {'met' if ours_acc >= plain_acc else 'MISSED'}")


# Every variant states each studied parameter, so the table does not change meaning when defaults do.
_BEFORE = {"lr_patience": None, "batch_size": 32, "refit": False, "rescoring": "gradient", "weak": "penalize"}
_CHOSEN = {**_BEFORE, "lr_patience": 5, "batch_size": 64, "rescoring": "permutation"}
STUDY = {
    "lr constant, batch 32 (before)": _BEFORE,
    "lr constant, batch 32, refit": {**_BEFORE, "refit": True},
    "lr halved after 5, batch 32": {**_BEFORE, "lr_patience": 5},
    "lr 5, batch 64 (default)": _CHOSEN,
    "lr 5, batch 64, refit": {**_CHOSEN, "refit": True},
    "lr 5, batch 64, no re-scoring": {**_CHOSEN, "rescoring": None},
    "lr 5, batch 64, weak=drop": {**_CHOSEN, "weak": "drop"},
    "lr 5, batch 64, rescoring=gradient (before)": {**_CHOSEN, "rescoring": "gradient"},
}


def study(names):
    datasets = {
        "Friedman #1 (MSE)": friedman,
        "diabetes + 10 noise (MSE)": diabetes_noise,
        "wine + 10 noise (acc)": wine_noise,
        "breast cancer (acc)": breast_cancer,
    }
    rows = []
    for variant in names:
        params = STUDY[variant]
        line = {"variant": variant}
        for label, data in datasets.items():
            metrics, seconds, _ = evaluate(data, "archguide", **params)
            line[label] = f"{metrics.mean():.3f} ± {metrics.std():.3f}"
            line[label.split(" (")[0] + " s"] = f"{seconds.mean():.1f}"
        rows.append(line)
        print(pd.DataFrame([line]).to_string(index=False), flush=True)
    print()
    print(pd.DataFrame(rows).set_index("variant").to_string())


def _extra_trees(task, n_estimators, n_jobs, seed):
    from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor

    kind = ExtraTreesRegressor if task == "regression" else ExtraTreesClassifier
    max_features = 1 / 3 if task == "regression" else "sqrt"
    return kind(
        n_estimators=n_estimators, max_features=max_features, min_samples_leaf=5, n_jobs=n_jobs, random_state=seed
    )


def scoring_downstream(title, variants, datasets, seeds=(0, 1, 2, 3, 4, 5)):
    """The default estimator on each data set with each variant of the scoring in place.

    ``variants``: label -> a context manager that puts the variant in place for the fits (None: the
    defaults). Metrics: test MSE for regression, accuracy for classification. "x2 / x4" (Friedman #1)
    is the proxy's importance of x2 (20 (x2 - 0.5)^2) over that of x4 (5 x4): the two contribute about
    the same variance to y (2.2 and 2.1), so 1 is faithful.
    """
    from contextlib import nullcontext

    rows = []
    for label, variant in variants.items():
        line = {"scoring": label}
        with variant() if variant is not None else nullcontext():
            for name, data in datasets.items():
                metrics, ratios = [], []
                for seed in seeds:
                    X, y, task = data(seed)
                    X_tr, X_te, y_tr, y_te = split(X, y, task, seed)
                    cls = ag.ImportanceGuidedRegressor if task == "regression" else ag.ImportanceGuidedClassifier
                    est = cls(random_state=seed).fit(X_tr, y_tr)
                    pred = est.predict(X_te)
                    metrics.append(
                        mean_squared_error(y_te, pred) if task == "regression" else accuracy_score(y_te, pred)
                    )
                    if data is friedman:
                        imp = est.scores_.importances.to_numpy()
                        ratios.append(imp[2] / imp[4])
                metric = "MSE" if task == "regression" else "accuracy"
                line[f"{name} {metric}"] = f"{np.mean(metrics):.3f} ± {np.std(metrics):.3f}"
                line[f"{name} per seed"] = " ".join(f"{m:.3f}" if m < 100 else f"{m:.0f}" for m in metrics)
                if ratios:
                    line["x2 / x4"] = f"{np.mean(ratios):.2f}"
                print(f"  done: {label}, {name}", flush=True)
        rows.append(line)
    print(f"{title}, seeds {list(seeds)}")
    print(pd.DataFrame(rows).set_index("scoring").T.to_string())


def proxy_study():
    """The default regressor with the default scoring proxy and with extremely randomized trees.

    bench_power.py --only proxy measures the weak flag's power; this measures the network built from the
    scores. The alternative proxy replaces ``archguide.scoring._proxy.default_proxy`` for the run.
    """
    from unittest import mock

    variants = {
        "random forest, leaf 3 (default)": None,
        "extra trees, leaf 5": lambda: mock.patch("archguide.scoring._proxy.default_proxy", _extra_trees),
    }
    datasets = {"Friedman #1": friedman, "diabetes + 10 noise": diabetes_noise}
    scoring_downstream("Scoring proxy downstream: the default regressor", variants, datasets)


def companion_study():
    """The default estimators with the weak test's linear companion (the default) and without it.

    bench_power.py measures the weak flag's power; this measures the networks planned from the flags.
    """
    from functools import partial
    from unittest import mock

    variants = {
        "forest and linear companion (default)": None,
        "forest alone (companion=None)": lambda: mock.patch(
            "archguide.estimators.estimator.score_features", partial(ag.score_features, companion=None)
        ),
    }
    datasets = {
        "Friedman #1": friedman,
        "diabetes + 10 noise": diabetes_noise,
        "wine + 10 noise": wine_noise,
        "breast cancer": breast_cancer,
    }
    scoring_downstream("The weak test's companion downstream: the default estimators", variants, datasets)


def truth_small(seed):
    """bench_power's known truth at 500 rows: faint, interacting (x3 x4, no main effects) and even effects
    among 30 columns; the forest proxy calls the interaction pair weak in about half of the seeds."""
    from bench_power import make_truth

    X, y = make_truth("regression", 500, seed)
    return X, y, "regression"


def replan_study(seeds=(0, 1, 2, 3, 4)):
    """The default estimators with ``replan`` off and with the residual check: test metric, fit seconds and
    re-plans per fit."""
    datasets = {
        "truth, 500 rows (MSE)": truth_small,
        "Friedman #1 (MSE)": friedman,
        "diabetes + 10 noise (MSE)": diabetes_noise,
        "wine + 10 noise (acc)": wine_noise,
    }
    rows = []
    for label, data in datasets.items():
        for replan in (False, "residuals"):
            metrics, seconds, replans = [], [], []
            for seed in seeds:
                X, y, task = data(seed)
                X_tr, X_te, y_tr, y_te = split(X, y, task, seed)
                cls = ag.ImportanceGuidedRegressor if task == "regression" else ag.ImportanceGuidedClassifier
                start = time.perf_counter()
                est = cls(random_state=seed, replan=replan).fit(X_tr, y_tr)
                seconds.append(time.perf_counter() - start)
                pred = est.predict(X_te)
                metrics.append(mean_squared_error(y_te, pred) if task == "regression" else accuracy_score(y_te, pred))
                replans.append(len(est.plans_) - 1)
            rows.append(
                {
                    "data": label,
                    "replan": replan,
                    "test metric": f"{np.mean(metrics):.3f} ± {np.std(metrics):.3f}",
                    "per seed": " ".join(f"{m:.3f}" if m < 100 else f"{m:.0f}" for m in metrics),
                    "fit s": f"{np.mean(seconds):.1f}",
                    "re-plans per fit": f"{np.mean(replans):.1f}",
                }
            )
            print(pd.DataFrame([rows[-1]]).to_string(index=False, header=len(rows) == 1), flush=True)
    print(f"\nRe-planning from the residual check (replan=False / 'residuals'), seeds {list(seeds)}")
    print(pd.DataFrame(rows).set_index(["data", "replan"]).to_string())


def misled_scores(scores):
    """``scores`` made wrong on purpose: the product pair (x2, x3) flagged weak with zero importance, and the
    strongest feature (x0) swapped with a noise one (x10), importance and flag."""
    import dataclasses

    importances, weak = scores.importances.copy(), scores.weak.copy()
    importances[["x2", "x3"]], weak[["x2", "x3"]] = 0.0, True
    for series in (importances, weak):
        series["x0"], series["x10"] = series["x10"], series["x0"]
    sums = [importances[m].sum() for m in scores.groups.values()]
    groups = pd.Series(sums, index=scores.group_importances.index, name="group_importance")
    return dataclasses.replace(
        scores, importances=importances, individual_importances=importances.rename("individual_importance"),
        weak=weak, group_importances=groups,
    )  # fmt: skip


#: archguide's variants in the misled study: label -> (estimator parameters, score_features replaced by).
def _misled_variants():
    from functools import partial

    real = ag.score_features
    wrong = lambda *args, **kwargs: misled_scores(real(*args, **kwargs))  # noqa: E731
    return {
        "archguide default": ({}, real),
        "archguide, previous defaults (companion=linear, replan=False, rescoring=gradient)": (
            {"replan": False, "rescoring": "gradient"},
            partial(real, companion="linear"),
        ),
        "archguide default, misled scores": ({}, wrong),
        "archguide rescoring=gradient, misled scores": ({"rescoring": "gradient"}, wrong),
        "archguide replan=False, misled scores": ({"replan": False}, wrong),
    }


#: The peer suite's best default tabular MLPs, in the misled study when pytabkit is installed (`make bench-peers`).
_MISLED_PEERS = ("RealMLP-TD", "TabM-D")


def _misled_fit(name, seed, n_train, n_test):
    """``(test MSE, fit seconds, whether x2 or x3 was weak in the scores)`` of one model of the misled study."""
    from unittest import mock

    from bench_power import make_truth_mains

    X, y = make_truth_mains("regression", n_train + n_test, seed)
    X_tr, X_te, y_tr, y_te = X[:n_train], X[n_train:], y[:n_train], y[n_train:]
    variant = _misled_variants().get(name)
    start = time.perf_counter()
    pair_weak = np.nan
    if name in _MISLED_PEERS:
        pred = MODELS[name][0](X_tr, y_tr, "regression", seed, n_threads=1).predict(X_te)
    elif variant is None:
        columns = slice(0, 6) if name.startswith("oracle") else slice(None)
        predict, _ = plain_mlp(X_tr[:, columns], y_tr, "regression", seed)
        pred = predict(X_te[:, columns])
    else:
        params, scorer = variant
        with mock.patch("archguide.estimators.estimator.score_features", scorer):
            est = ag.ImportanceGuidedRegressor(random_state=seed, **params).fit(X_tr, y_tr)
        pred = est.predict(X_te)
        pair_weak = float(est.scores_.weak[["x2", "x3"]].any())
    seconds, mse = time.perf_counter() - start, mean_squared_error(y_te, pred)
    print(f"  seed {seed}: {name}: {mse:.3f}", flush=True)
    return mse, seconds, pair_weak


def misled_study(seeds=(0, 1, 2, 3, 4, 5), n_train=1000, n_test=1000, n_jobs=1):
    """Truth set 2 of bench_power (strong main effects beside a pure product x2 x3 and two faint terms;
    regression): the natural misses (the scores as computed) and the scores made wrong on purpose
    (:func:`misled_scores`), against the oracle MLP (x0..x5 only), the plain MLP, and RealMLP-TD and TabM-D
    (pytabkit's defaults, one thread each) when pytabkit is installed.

    ``n_jobs`` fits run side by side (joblib's processes), each on one thread as a single run is.
    """
    from importlib.util import find_spec

    from joblib import Parallel, delayed

    rows = []
    peers = list(_MISLED_PEERS) if find_spec("pytabkit") is not None else []
    if not peers:
        print("RealMLP-TD and TabM-D left out: pytabkit is not installed (make bench-peers installs it).")
    names = ["oracle MLP (x0..x5)", "plain MLP 64-32", *peers, *_misled_variants()]
    tasks = [(name, seed) for seed in seeds for name in names]
    fitted = Parallel(n_jobs=n_jobs)(delayed(_misled_fit)(name, seed, n_train, n_test) for name, seed in tasks)
    results = {name: ([], [], []) for name in names}  # mse, seconds, x2/x3 weak in the scores
    for (name, _), outcome in zip(tasks, fitted):
        for values, value in zip(results[name], outcome):
            values.append(value)
    oracle = np.array(results["oracle MLP (x0..x5)"][0])
    for name, (mse, seconds, weak) in results.items():
        mse = np.array(mse)
        rows.append(
            {
                "model": name,
                "test MSE": f"{mse.mean():.3f} ± {mse.std():.3f}",
                "per seed": " ".join(f"{m:.3f}" for m in mse),
                "/ oracle": f"{np.mean(mse / oracle):.3f}",
                "worst / oracle": f"{np.max(mse / oracle):.3f}",
                "pair weak in scores": "" if np.isnan(weak).all() else f"{np.nanmean(weak):.2f}",
                "fit s": f"{np.mean(seconds):.1f}",
            }
        )
    print(f"\nMisled and natural misses: truth set 2, {n_train:,} training rows, {n_test:,} test rows")
    print(f"seeds {list(seeds)}, {n_jobs} fit(s) at a time, one thread each")
    print(pd.DataFrame(rows).set_index("model").to_string())
    print("Target: the default estimator with misled scores within 10% of the oracle MLP's test MSE (/ oracle <= 1.1).")


def friedman_wide(seed):
    X, y = make_friedman1(n_samples=1000, n_features=200, noise=1.0, random_state=seed)
    return X, y, "regression"


def classification_wide(seed):
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=1000, n_features=200, n_informative=6, n_redundant=0,
                               n_clusters_per_class=2, class_sep=1.0, random_state=seed)  # fmt: skip
    return X, y, "classification"


def classification_mid(seed):
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=2000, n_features=30, n_informative=6, n_redundant=4, n_classes=3,
                               random_state=seed)  # fmt: skip
    return X, y, "classification"


def friedman_small(seed):
    X, y = make_friedman1(n_samples=300, n_features=20, noise=1.0, random_state=seed)
    return X, y, "regression"


#: Per config kind: the data of its kind and the variants tried (config overrides).
CONFIG_STUDY = {
    "small": {
        "data": {
            "Friedman #1, 300 rows x 20 (MSE)": friedman_small,
            "diabetes + 10 noise (MSE)": diabetes_noise,
            "wine + 10 noise (acc)": wine_noise,
        },
        "variants": {
            "refit": {"training": {"refit": True}},
            "weak=drop": {"planning": {"weak": "drop"}},
            "64 units, 10 repeats": {"planning": {"total_units": 64}, "scoring": {"n_repeats": 10}},
        },
    },
    "wide": {
        "data": {
            "Friedman #1, 1000 rows x 200 (MSE)": friedman_wide,
            "make_classification 1000 x 200, 6 informative (acc)": classification_wide,
        },
        "variants": {
            "weak=drop": {"planning": {"weak": "drop"}},
            "l1_power=2": {"planning": {"l1_power": 2.0}},
            "weak=drop, 64 units": {"planning": {"weak": "drop", "total_units": 64}},
        },
    },
    "classification": {
        "data": {
            "wine + 10 noise (acc)": wine_noise,
            "breast cancer (acc)": breast_cancer,
            "make_classification 2000 x 30, 3 classes (acc)": classification_mid,
        },
        "variants": {
            "patience 30, lr_patience 10": {"training": {"patience": 30, "lr_patience": 10}},
            "batch 32": {"training": {"batch_size": 32}},
            "refit": {"training": {"refit": True}},
        },
    },
}


def config_study(kinds, seeds=(0, 1, 2)):
    """Each kind's data: the defaults, each variant tried, and configs/<kind>.yaml if it exists."""
    from pathlib import Path

    from archguide.config import estimator_params, load_config, validate

    for kind in kinds:
        entry = CONFIG_STUDY[kind]
        variants = {"defaults": {}, **entry["variants"]}
        path = Path(__file__).resolve().parent.parent / "configs" / f"{kind}.yaml"
        if path.exists():
            variants[f"configs/{kind}.yaml"] = load_config(path)
        rows = []
        for name, overrides in variants.items():
            params = estimator_params(validate(overrides))
            params = {k: v for k, v in params.items() if k != "random_state"}  # the seed is the study's
            line = {"variant": name}
            for label, data in entry["data"].items():
                metrics, seconds, _ = evaluate(data, "archguide", seeds=seeds, **params)
                line[label] = f"{metrics.mean():.3f} ± {metrics.std():.3f}"
                line[label.split(" (")[0] + " s"] = f"{seconds.mean():.1f}"
            rows.append(line)
            print(pd.DataFrame([line]).to_string(index=False), flush=True)
        print()
        print(f"Config study: {kind}, seeds {list(seeds)} (mean ± spread over seeds; fit seconds)")
        print(pd.DataFrame(rows).set_index("variant").T.to_string())
        print()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--study", nargs="*", metavar="VARIANT", help=f"variants among {list(STUDY)} (default: all)")
    parser.add_argument("--proxy", action="store_true", help="the scoring proxy's effect on the fitted network")
    parser.add_argument("--companion", action="store_true", help="the weak test's companion's effect downstream")
    parser.add_argument("--replan", action="store_true", help='replan=False against replan="residuals"')
    parser.add_argument("--seeds", type=int, default=None, help="seeds of --replan and --misled (0..N-1)")
    parser.add_argument("--misled", action="store_true", help="scores made wrong on purpose, and natural misses")
    parser.add_argument("--jobs", type=int, default=1, help="fits of --misled side by side (one thread each)")
    parser.add_argument("--configs", nargs="*", metavar="KIND", help=f"config kinds among {list(CONFIG_STUDY)}")
    args = parser.parse_args()
    if args.configs is not None:
        config_study(args.configs or list(CONFIG_STUDY))
    elif args.proxy:
        proxy_study()
    elif args.companion:
        companion_study()
    elif args.replan:
        replan_study(*([tuple(range(args.seeds))] if args.seeds else []))
    elif args.misled:
        misled_study(**({"seeds": tuple(range(args.seeds))} if args.seeds else {}), n_jobs=args.jobs)
    elif args.study is not None:
        study(args.study or list(STUDY))
    else:
        main_table()
