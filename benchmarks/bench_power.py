"""Power and calibration of the weak flag, side by side with Boruta and LassoCV, in one run.

Known-truth data, two truth sets of 30 standard-normal features, six of them informative.
Truth set 1 (``make_truth``), where the product carries the largest share of the signal:

    eta = 1.0 x0 + 0.5 x1 + 0.25 x2  +  x3 * x4  +  0.5 (x5^2 - 1)
          strong, medium, faint linear   pure interaction   pure nonlinear (even: no linear trend)

Truth set 2 (``make_truth_mains``), where stronger main effects compete for the forest's splits
(together about five times the noise variance; the product as much as the noise):

    eta = 1.8 x0 + 1.9 sin(2 x1)  +  x2 * x3  +  0.3 x4 + 0.3 x5
          strong linear, strong sine   pure interaction   two faint linear

regression: y = eta + N(0, 1); classification: y ~ Bernoulli(sigmoid(1.5 eta)). The
other 24 features are noise. The product's features have no main effect and the even
term no linear one, so a linear model cannot see them.

Tables:

1. Power: share of the six informative features not flagged weak (Boruta: confirmed),
   false keep: share of the 24 noise features not flagged weak, and seconds per run,
   for ``score_features`` (defaults), without its linear companion (``companion=None``: the
   forest alone), on one split (``cv=None``),
   Boruta (``boruta``, a benchmark extra: random forest of depth 5, its defaults
   otherwise) and scikit-learn's ``LassoCV`` (nonzero coefficients on standardised
   features; 0/1 labels for classification). The weak flag's false discovery rate is
   also applied at 0.01 and 0.10 to the same p-values, to show what the default 0.05
   trades.
2. Calibration: pure noise (y independent of every column) at 300 x 500, 300 x 2,000,
   1,000 x 100 and 5,000 x 50: share of runs with any column not weak (the documented
   bound is ``noise_alpha`` = 0.05) and the mean share of columns kept.
3. Stability: ten ``random_state`` values on the same data; for each feature, how often
   its weak flag agrees with its majority flag. "clear" features are those whose median
   p-value is below 0.001 or above 0.5, away from the threshold.

Usage: python benchmarks/bench_power.py [--quick] [--study] [--only power|calibration|stability|
                                        proxy|indicators|companion|trees|cv|repeats|folds]
                                        [--task regression|classification] [--truth 1 2]
                                        [--seeds 30] [--boruta-seeds 5]
(--seeds: seeds of the power table, 30 by default; Boruta, which takes 10-30 s a run, on the
first --boruta-seeds of them: its power is over those, its time is what the ratio divides by;
"pair found": share of runs that keep both features of the product.)
(--quick: two seeds and 5 calibration runs per shape; --task: calibration of one task only;
--study: also the studies behind the defaults: the proxy forest against extremely randomized
trees (30 seeds), the classification forest as Gini classification trees against regression
trees on the class indicators (``indicators``, 10 seeds), the weak test's linear companion
against the forest alone (``companion``, 30 seeds), trees per forest
(``n_estimators="auto"``), number of folds (``cv="auto"``, 14 seeds), shuffles per group
(``n_repeats``, 14 seeds) and the fold-correlation study that chose
``archguide.scoring._weak_test.FOLD_VARIANCE``.)
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pandas as pd
from scipy.special import expit
from scipy.stats import false_discovery_control

import archguide as ag
from archguide.scoring._weak_test import FOLD_VARIANCE

N_FEATURES = 30
INFORMATIVE = list(range(6))
NOISE = [j for j in range(N_FEATURES) if j not in INFORMATIVE]
KINDS = {"faint": [2], "interaction": [3, 4], "nonlinear": [5]}
#: The kinds of truth set 2 (the sine is its nonlinear term).
KINDS_MAINS = {"faint": [4, 5], "interaction": [2, 3], "nonlinear": [1]}
NOISE_SHAPES = [(300, 500), (300, 2000), (1000, 100), (1000, 30), (5000, 50)]
FOLD_SHAPES = [("classification", 300, 500), ("classification", 1000, 100), ("classification", 3000, 50),
               ("regression", 300, 500), ("regression", 1000, 100),
               ("classification", 1000, 30), ("regression", 500, 30), ("regression", 1000, 30),
               ("regression", 2000, 30), ("regression", 3000, 50)]  # fmt: skip


def make_truth(task: str, n: int, seed: int, p: int = N_FEATURES):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, p)
    eta = 1.0 * X[:, 0] + 0.5 * X[:, 1] + 0.25 * X[:, 2] + X[:, 3] * X[:, 4] + 0.5 * (X[:, 5] ** 2 - 1)
    if task == "regression":
        return X, eta + rng.randn(n)
    return X, (rng.rand(n) < expit(1.5 * eta)).astype(int)


def make_truth_mains(task: str, n: int, seed: int, p: int = N_FEATURES):
    """Truth set 2: strong main effects beside a pure product of two features and two faint terms."""
    rng = np.random.RandomState(seed)
    X = rng.randn(n, p)
    eta = 1.8 * X[:, 0] + 1.9 * np.sin(2 * X[:, 1]) + X[:, 2] * X[:, 3] + 0.3 * X[:, 4] + 0.3 * X[:, 5]
    if task == "regression":
        return X, eta + rng.randn(n)
    return X, (rng.rand(n) < expit(1.5 * eta)).astype(int)


TRUTHS = {1: (make_truth, KINDS), 2: (make_truth_mains, KINDS_MAINS)}


def timed_scores(X, y, seed, **options):
    """``(score_features' result, its seconds)``, its small-data warnings silenced."""
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ag.ArchguideWarning)
        scores = ag.score_features(X, y, random_state=seed, **options)
    return scores, time.perf_counter() - start


def run_scores(X, y, seed, **options):
    scores, seconds = timed_scores(X, y, seed, **options)
    kept = {0.05: ~scores.weak.to_numpy()}
    p = scores.group_p_values.to_numpy()
    if all(len(m) == 1 for m in scores.groups.values()):  # p-values per feature: re-decide at other rates
        adjusted = false_discovery_control(p, method="bh")
        kept = {alpha: adjusted <= alpha for alpha in (0.01, 0.05, 0.10)}
    return kept, seconds


def run_boruta(task, X, y, seed):
    from boruta import BorutaPy
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    forest = (RandomForestRegressor if task == "regression" else RandomForestClassifier)(max_depth=5, n_jobs=1)
    start = time.perf_counter()
    selector = BorutaPy(forest, n_estimators="auto", random_state=seed).fit(X, y)
    return {0.05: selector.support_}, time.perf_counter() - start


def run_lasso(X, y, seed):
    from sklearn.linear_model import LassoCV
    from sklearn.preprocessing import StandardScaler

    start = time.perf_counter()
    model = LassoCV(cv=5, random_state=seed).fit(StandardScaler().fit_transform(X), y)
    return {0.05: model.coef_ != 0}, time.perf_counter() - start


def have_boruta() -> bool:
    try:
        import boruta  # noqa: F401
    except ImportError:
        return False
    return True


def power_table(seeds: list[int], truth: int = 1, n_boruta: int = 5, sizes=(500, 1000, 2000)) -> pd.DataFrame:
    """Power per kind of effect on truth set ``truth``; Boruta (slow) on the first ``n_boruta`` seeds."""
    make, kinds = TRUTHS[truth]
    rows = []
    methods = {
        "score_features": lambda task, X, y, s: run_scores(X, y, s),
        "score_features companion=linear": lambda task, X, y, s: run_scores(X, y, s, companion="linear"),
        "Boruta": run_boruta if have_boruta() else None,
        "LassoCV": lambda task, X, y, s: run_lasso(X, y, s),
    }
    for task in ("regression", "classification"):
        for n in sizes:
            results = {name: [] for name in methods}
            for i, seed in enumerate(seeds):
                X, y = make(task, n, seed)
                for name, method in methods.items():
                    if method is not None and (name != "Boruta" or i < n_boruta):
                        results[name].append(method(task, X, y, seed))
            boruta_seconds = np.mean([s for _, s in results["Boruta"]]) if results["Boruta"] else np.nan
            for name, runs in results.items():
                if not runs:
                    why = "not installed" if methods[name] is None else "not run: --boruta-seeds 0"
                    rows.append({"task": task, "rows": n, "method": f"{name} ({why})"})
                    continue
                kept = np.array([k[0.05] for k, _ in runs])
                seconds = float(np.mean([s for _, s in runs]))
                row = {
                    "task": task,
                    "rows": n,
                    "method": name,
                    "seeds": len(runs),
                    "power": kept[:, INFORMATIVE].mean(),
                    "false keep": kept[:, NOISE].mean(),
                }
                row.update({kind: kept[:, cols].mean() for kind, cols in kinds.items()})
                row["pair found"] = kept[:, kinds["interaction"]].all(axis=1).mean()
                for alpha in (0.01, 0.10):
                    if alpha in runs[0][0]:
                        at = np.array([k[alpha] for k, _ in runs])
                        row[f"power/false @{alpha:g}"] = f"{at[:, INFORMATIVE].mean():.2f}/{at[:, NOISE].mean():.3f}"
                row["seconds"] = seconds
                row["time / Boruta"] = seconds / boruta_seconds
                rows.append(row)
            print(f"  done: {task}, {n} rows", flush=True)
    return pd.DataFrame(rows)


def calibration_table(n_runs: int, tasks: tuple[str, ...] = ("regression", "classification")) -> pd.DataFrame:
    rows = []
    for task in tasks:
        for n, p in NOISE_SHAPES:
            any_kept, share, seconds = [], [], []
            for run in range(n_runs):
                rng = np.random.RandomState(10_000 + run)
                X = rng.randn(n, p)
                y = rng.randn(n) if task == "regression" else rng.randint(0, 2, n)
                kept, s = run_scores(X, y, run)
                any_kept.append(kept[0.05].any())
                share.append(kept[0.05].mean())
                seconds.append(s)
            rows.append(
                {
                    "task": task,
                    "rows x columns": f"{n:,} x {p:,}",
                    "runs": n_runs,
                    "runs with any kept": f"{sum(any_kept)}/{n_runs}",
                    "share": np.mean(any_kept),
                    "bound": 0.05,
                    "mean columns kept": np.mean(share),
                    "seconds": np.mean(seconds),
                }
            )
            print(f"  done: {task}, {n} x {p}", flush=True)
    return pd.DataFrame(rows)


def stability_table(n_states: int = 10) -> pd.DataFrame:
    from sklearn.datasets import load_diabetes

    diabetes = load_diabetes(as_frame=True)
    sets = {
        "truth, regression, 1,000 rows": make_truth("regression", 1000, 0),
        "truth, classification, 1,000 rows": make_truth("classification", 1000, 0),
        "diabetes, 442 rows": (diabetes.data, diabetes.target),
    }
    rows = []
    for label, (X, y) in sets.items():
        flags, p_values = [], []
        for state in range(n_states):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ag.ArchguideWarning)
                scores = ag.score_features(X, y, random_state=state)
            flags.append(scores.weak.to_numpy())
            p_values.append([scores.group_p_values[scores.group_of[f]] for f in scores.features])
        flags, p_values = np.array(flags), np.array(p_values)
        agreement = np.maximum(flags.mean(axis=0), 1 - flags.mean(axis=0))
        median_p = np.median(p_values, axis=0)
        clear = (median_p < 0.001) | (median_p > 0.5)
        unclear = [f"{f} ({a:.0%})" for f, a, c in zip(scores.features, agreement, clear) if not c]
        rows.append(
            {
                "data": label,
                "states": n_states,
                "features": len(agreement),
                "min agreement": agreement.min(),
                "min agreement, clear": agreement[clear].min() if clear.any() else np.nan,
                "clear": int(clear.sum()),
                "never weak": ", ".join(str(f) for f, k in zip(scores.features, flags.any(axis=0)) if not k)
                if label.startswith("diabetes")
                else "",
                "near the threshold (agreement)": ", ".join(unclear),
            }
        )
    return pd.DataFrame(rows)


STUDY_LABELS = {"n_estimators": "trees", "cv": "folds", "n_repeats": "shuffles"}


def knob_study(seeds: list[int], option: str, values: tuple) -> pd.DataFrame:
    """Power, interaction power, false keep and seconds as one ``score_features`` option varies."""
    rows = []
    for task in ("regression", "classification"):
        for n in (500, 1000):
            for value in values:
                runs = [run_scores(*make_truth(task, n, s), s, **{option: value}) for s in seeds]
                kept = np.array([k[0.05] for k, _ in runs])
                rows.append(
                    {
                        "task": task,
                        "rows": n,
                        STUDY_LABELS[option]: value,
                        "power": kept[:, INFORMATIVE].mean(),
                        "interaction": kept[:, KINDS["interaction"]].mean(),
                        "false keep": kept[:, NOISE].mean(),
                        "seconds": np.mean([s for _, s in runs]),
                    }
                )
    return pd.DataFrame(rows)


PROXIES = {  # (kind, min_samples_leaf); max_features 1/3 for regression, sqrt for classification
    "random forest, leaf 3 (default)": ("RandomForest", 3),
    "extra trees, leaf 3": ("ExtraTrees", 3),
    "extra trees, leaf 5": ("ExtraTrees", 5),
    "extra trees, leaf 10": ("ExtraTrees", 10),
}


def proxy_study(seeds: list[int]) -> pd.DataFrame:
    """Power, false keep and seconds of the default proxy against extremely randomized trees.

    Each forest is passed as ``estimator=`` with ``random_state`` = the seed. What the proxy does to the
    fitted network downstream is measured by ``benchmarks/bench_estimators.py --proxy``.
    """
    from sklearn import ensemble

    from archguide.scoring._proxy import default_proxy

    rows = []
    for task in ("regression", "classification"):
        suffix, max_features = ("Regressor", 1 / 3) if task == "regression" else ("Classifier", "sqrt")
        for n in (500, 1000):
            for label, (kind, leaf) in PROXIES.items():
                runs = []
                for s in seeds:
                    if label.endswith("(default)"):  # for classes, regression trees on the class indicators
                        forest = default_proxy(task, 100, None, s)
                    else:
                        forest = getattr(ensemble, kind + suffix)(
                            n_estimators=100, max_features=max_features, min_samples_leaf=leaf, random_state=s
                        )
                    runs.append(run_scores(*make_truth(task, n, s), s, estimator=forest))
                rows.append(_study_row(task, n, label, [k[0.05] for k, _ in runs], [t for _, t in runs]))
            print(f"  done: {task}, {n} rows", flush=True)
    return pd.DataFrame(rows)


def _study_row(task, n, label, kept, seconds):
    kept = np.array(kept)
    return {
        "task": task,
        "rows": n,
        "proxy": label,
        "power": kept[:, INFORMATIVE].mean(),
        "faint": kept[:, KINDS["faint"]].mean(),
        "interaction": kept[:, KINDS["interaction"]].mean(),
        "false keep": kept[:, NOISE].mean(),
        "seconds": np.mean(seconds),
    }


def companion_study(seeds: list[int], sizes: tuple[int, ...] = (500, 1000)) -> pd.DataFrame:
    """The weak test's linear companion (``companion="linear"``, the default) at 500 and the target's 1,000 rows.

    Rows: the forest alone (``companion=None``), a linear model alone as the proxy (the companion's model,
    passed as ``estimator=``), and both, so that a feature either proxy needs is kept: as first landed (the
    companion shuffled ``n_repeats`` = 5 times, each group's smaller p-value doubled), with 25 shuffles, and
    the default (25 shuffles, Simes' combination ``min(2 * smaller, larger)``); then Benjamini-Hochberg at 0.05.
    """
    from unittest import mock

    import archguide.scoring.score as scoring
    from archguide.scoring._companion import linear_proxy

    def doubled(p_first, p_second):
        return np.minimum(1.0, 2.0 * np.minimum(p_first, p_second))

    both = {
        "forest and linear, 5 shuffles, doubled": (5, doubled),
        "forest and linear, 25 shuffles, doubled": (25, doubled),
        "forest and linear, 25 shuffles, Simes (default)": (scoring.COMPANION_REPEATS, scoring.either_p_value),
    }
    rows = []
    for task in ("regression", "classification"):
        for n in sizes:
            runs = []  # (label, scores, seconds)
            for seed in seeds:
                X, y = make_truth(task, n, seed)
                runs.append(("forest alone (companion=None)", *timed_scores(X, y, seed, companion=None)))
                linear = linear_proxy(task)
                runs.append(("linear model alone", *timed_scores(X, y, seed, companion=None, estimator=linear)))
                for label, (repeats, combine) in both.items():
                    with (
                        mock.patch.object(scoring, "COMPANION_REPEATS", repeats),
                        mock.patch.object(scoring, "either_p_value", combine),
                    ):
                        runs.append((label, *timed_scores(X, y, seed)))
            for label in dict.fromkeys(label for label, _, _ in runs):
                kept = [~scores.weak.to_numpy() for name, scores, _ in runs if name == label]
                rows.append(_study_row(task, n, label, kept, [t for name, _, t in runs if name == label]))
            print(f"  done: {task}, {n} rows", flush=True)
    return pd.DataFrame(rows)


def indicator_study(seeds: list[int]) -> pd.DataFrame:
    """The classification proxy: a Gini forest classifier against regression trees on the class indicators.

    The same ``score_features`` run with its default proxy (``IndicatorForestClassifier``) and with
    scikit-learn's ``RandomForestClassifier`` of the same parameters and seeds in its place. Both split by
    the Gini impurity, so the flags should agree; the study measures the time and how often they do.
    Data: the known truth (two classes) and, for more classes, ``make_classification`` with 30 features,
    6 of them informative, 4 classes.
    """
    from unittest import mock

    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    from archguide.scoring import _proxy

    default_proxy = _proxy.default_proxy  # bound before the patch below puts gini_forest in its place

    def gini_forest(task, n_estimators, n_jobs, seed):  # the default's parameters, in scikit-learn's classifier
        return RandomForestClassifier(**default_proxy(task, n_estimators, n_jobs, seed).get_params())

    def four_classes(n, seed):
        return make_classification(n, N_FEATURES, n_informative=6, n_redundant=0, n_classes=4, random_state=seed)

    sets = [("2 classes (truth)", n, lambda n, s: make_truth("classification", n, s)) for n in (500, 1000, 2000)]
    sets += [("4 classes", n, four_classes) for n in (1000, 4000)]
    rows = []
    for label, n, make in sets:
        runs = {"RandomForestClassifier": [], "indicator trees (default)": []}
        for seed in seeds:
            X, y = make(n, seed)
            with mock.patch.object(_proxy, "default_proxy", gini_forest):
                runs["RandomForestClassifier"].append(timed_scores(X, y, seed))
            runs["indicator trees (default)"].append(timed_scores(X, y, seed))
        (gini, gini_t), (ours, ours_t) = (zip(*r) for r in runs.values())
        flags = [(a.weak.to_numpy(), b.weak.to_numpy()) for a, b in zip(gini, ours)]
        gap = [np.abs(a.importances - b.importances).max() / a.importances.abs().max() for a, b in zip(gini, ours)]
        row = {"data": label, "rows": n, "seeds": len(seeds)}
        if label.startswith("2 classes"):
            power = [np.mean([~f[i][INFORMATIVE] for f in flags]) for i in (0, 1)]
            row["power (Gini/indicators)"] = f"{power[0]:.3f}/{power[1]:.3f}"
        row.update(
            {
                "flags equal": np.mean([np.mean(a == b) for a, b in flags]),
                "max importance gap": np.max(gap),
                "seconds Gini": np.mean(gini_t),
                "seconds indicators": np.mean(ours_t),
                "time ratio": np.mean(ours_t) / np.mean(gini_t),
            }
        )
        rows.append(row)
        print(f"  done: {label}, {n} rows", flush=True)
    return pd.DataFrame(rows)


def fold_correlation_study(n_runs: int, folds: tuple[int, ...] = (5, 4, 3)) -> pd.DataFrame:
    """How much the cross-fitted folds' t statistics move together on pure noise (chose FOLD_VARIANCE and
    PAIRWISE_FOLD_VARIANCE).

    For every noise column and each test (the forest's, the linear companion's, the pairwise companion's),
    each fold's own t statistic of the per-row loss increases is computed; under the null each has variance
    1, and the pooled statistic's variance is 1 + (K - 1) * correlation; "widening" is what the weak test
    divides the squared t statistic by (the same for every K).
    """
    import archguide.scoring.score as scoring

    seen = {"calls": []}
    row_p_values, row_splits = scoring.row_p_values, scoring.row_splits
    tests = ("forest", "linear", "pairwise")

    def record_deltas(deltas, n_folds=1, fold_variance=FOLD_VARIANCE):
        seen["calls"].append((deltas, fold_variance))
        return row_p_values(deltas, n_folds, fold_variance)

    def record_splits(*args, **kwargs):
        splits = row_splits(*args, **kwargs)
        seen["sizes"] = [len(evaluate) for _, evaluate in splits]
        return splits

    rows = []
    scoring.row_p_values, scoring.row_splits = record_deltas, record_splits
    try:
        for cv in folds:
            for task, n, p in FOLD_SHAPES:
                z, widening = {}, {}
                for run in range(n_runs):
                    rng = np.random.RandomState(20_000 + run)
                    X = rng.randn(n, p)
                    y = rng.randn(n) if task == "regression" else rng.randint(0, 2, n)
                    seen["calls"] = []
                    run_scores(X, y, run, groups=None, cv=cv)
                    bounds = np.cumsum([0, *seen["sizes"]])
                    for test, (deltas, variance) in zip(tests, seen["calls"]):
                        parts = [deltas[:, a:b] for a, b in zip(bounds[:-1], bounds[1:])]
                        with np.errstate(invalid="ignore", divide="ignore"):
                            t = np.stack([f.mean(1) / (f.std(1, ddof=1) / np.sqrt(f.shape[1])) for f in parts], 1)
                        z.setdefault(test, []).append(t[np.isfinite(t).all(axis=1)])
                        widening[test] = variance
                for test, values in z.items():
                    values = np.concatenate(values)
                    pairs = [np.corrcoef(values[:, i], values[:, j])[0, 1] for i in range(cv) for j in range(i)]
                    rows.append(
                        {
                            "task": task,
                            "rows x columns": f"{n:,} x {p:,}",
                            "folds": cv,
                            "test": test,
                            "runs": n_runs,
                            "noise columns": len(values),
                            "fold t variance": values.var(),
                            "fold correlation": np.mean(pairs),
                            "pooled variance": (values.sum(axis=1) / np.sqrt(cv)).var(),
                            "widening": widening[test],
                        }
                    )
                print(f"  done: {cv} folds, {task}, {n} x {p}", flush=True)
    finally:
        scoring.row_p_values, scoring.row_splits = row_p_values, row_splits
    return pd.DataFrame(rows)


def show(title: str, frame: pd.DataFrame) -> None:
    print(f"\n{title}")
    print(frame.to_string(index=False, float_format=lambda v: f"{v:.3f}"), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two seeds, 5 calibration runs per shape")
    parser.add_argument(
        "--study",
        action="store_true",
        help="also the studies behind the defaults (proxy, indicators, companion, trees, cv, repeats, folds)",
    )
    tables = ["power", "calibration", "stability"]
    studies = ["proxy", "indicators", "companion", "trees", "cv", "repeats", "folds"]
    parser.add_argument("--only", choices=tables + studies, help="one table")
    parser.add_argument("--task", choices=["regression", "classification"], help="calibration of one task only")
    parser.add_argument("--seeds", type=int, default=30, help="seeds of the power table (default 30)")
    parser.add_argument("--boruta-seeds", type=int, default=5, help="of which Boruta runs on the first (slow)")
    parser.add_argument("--truth", type=int, nargs="+", choices=[1, 2], default=[1, 2], help="truth sets")
    parser.add_argument("--rows", type=int, nargs="+", default=[500, 1000, 2000], help="rows of the power table")
    args = parser.parse_args()
    run = {args.only} if args.only else set(tables + (studies if args.study else []))
    seeds = [0, 1] if args.quick else [0, 1, 2, 3, 4]
    power_seeds = seeds if args.quick else list(range(args.seeds))
    tasks = (args.task,) if args.task else ("regression", "classification")
    print(f"bench_power: {os.cpu_count()} cores, archguide {ag.__version__}, seeds {seeds}", end="")
    if "power" in run:  # the power table's own seeds
        n_boruta = min(args.boruta_seeds, len(power_seeds))
        print(f"; power table: seeds 0..{power_seeds[-1]}, Boruta on the first {n_boruta}", end="")
    print()
    if "power" in run:
        for truth in args.truth:
            frame = power_table(power_seeds, truth, n_boruta, args.rows)
            show(f"1. Truth set {truth}: power and false keep (mean over seeds); seconds per run", frame)
        print("Target: power >= 0.9 at 1,000 rows with false keep <= 0.05, in at most a tenth of Boruta's time.")
    if "calibration" in run:
        show("2. Calibration on pure noise", calibration_table(5 if args.quick else 20, tasks))
        print("Target: share of runs with any column kept within noise_alpha = 0.05.")
    if "stability" in run:
        show("3. Stability of the weak flag over random_state 0..9", stability_table())
        print("Target: agreement >= 0.9 on every clear feature.")
    if "proxy" in run:
        frame = proxy_study(list(range(30)))
        show("Study: the proxy forest (100 trees), seeds 0..29", frame)
        show(
            "Mean over the four task x rows rows",
            frame.groupby("proxy", sort=False)[["power", "false keep", "seconds"]].mean().reset_index(),
        )
    if "indicators" in run:
        show("Study: the classification proxy's trees, seeds 0..9", indicator_study(list(range(10))))
        print("max importance gap: largest |difference| of an importance over the largest importance.")
    if "companion" in run:
        show("Study: the weak test's linear companion, seeds 0..29", companion_study(list(range(30))))
    if "trees" in run:
        show("Study: trees per forest with folds (n_estimators)", knob_study(seeds, "n_estimators", (30, 50, 100)))
    if "cv" in run:
        show("Study: number of folds (cv), seeds 0..13", knob_study(list(range(14)), "cv", (5, 4, 3)))
    if "repeats" in run:
        show("Study: shuffles per group (n_repeats), seeds 0..13", knob_study(list(range(14)), "n_repeats", (5, 3, 2)))
    if "folds" in run:
        show("Study: correlation of the folds' t statistics on pure noise", fold_correlation_study(20))


if __name__ == "__main__":
    main()
