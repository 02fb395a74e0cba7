"""Side by side with the peers: is an importance-guided network actually better?

One command runs every table in this one process (the cost table starts a fresh process per fit,
to read that fit's peak memory), writes Markdown tables and a plot under ``benchmarks/results/``
and prints them:

    python -m benchmarks.peers                  # every table, three seeds
    python -m benchmarks.peers --quick          # one seed, small sizes, without LassoNet and TabM-D
                                                # (under ten minutes on 2 cores)
    python -m benchmarks.peers --tables friedman classification
    python -m benchmarks.peers --tables real --data affairs   # one data set; the table's others as saved
    python -m benchmarks.peers --tables suite_noise --models "archguide embedding=8"   # one row more (an ablation)
    python -m benchmarks.peers --rebuild        # the Markdown and plot again from the saved raw results
    make bench-peers                            # installs the peers extra first, then every table

Rows: archguide's default estimator; a plain Keras MLP (64-32, Adam, early stopping on 20% of the
training rows, as archguide's default holds out); scikit-learn's HistGradientBoosting; CatBoost and
LightGBM at their defaults (categories as their categorical features); a random forest; LassoNet;
Boruta selection followed by the plain MLP; RealMLP-TD and TabM-D (pytabkit, on PyTorch's CPU build;
gaps in numbers filled with the training means, which pytabkit needs); where the truth is known, the
oracle MLP (the plain MLP on the informative features alone). A peer whose package is absent gets a
row that says so (``pip install -e ".[peers]"`` adds them all). Ablation rows (``ABLATIONS``: the
default estimator with one setting changed) run when named with ``--models``. CatBoost, LightGBM and
pytabkit use the cores this process may run on (``taskset`` pins a run).

Tables:
1. friedman: Friedman #1, 2,000 rows, 5 informative of 50 features, noise 1.0; 20% test.
2. classification: make_classification, 3,000 rows, 60 features (6 informative, 6 redundant
   linear combinations of them, 48 noise); 20% test, stratified; accuracy and log loss.
3. real: two sets with numbers and categories, each plus 10 standard-normal noise columns and one
   noise category (5 levels):
   - diamonds (regression of log10 price; a seeded sample of 10,000 of its 53,940 rows; carat,
     depth, table, x, y, z and the ordered categories cut, color, clarity), the CSV inside
     plotnine's wheel (plotnine: MIT; the data set comes from ggplot2, MIT);
   - affairs (classification: any affair; 6,366 rows; marriage rating, age, years married,
     children, religiousness, education, and the wife's and husband's occupations as categories),
     Fair (1978), inside statsmodels' wheel (statsmodels: BSD-3; "included with permission of the
     author").
4. cost: fit time and peak memory (the process's resident set) of the default estimator and of the
   plain MLP at 10^3, 10^4, 10^5 and 10^6 rows of Friedman #1 with 20 features, both trained for
   the same 5 epochs with batch 64 (early stopping cannot end either sooner).
5. suite: eleven real tables as published, each from a file inside a package on PyPI (licences in
   each loader's docstring): regression (diamonds, txhousing, randhie, mpg, diabetes, grunfeld) and
   classification (affairs, anes96, breast cancer: binary; penguins, wine: three classes), with
   categories (high-cardinality in txhousing and mpg) and gaps (txhousing, penguins); 178 to 10,000
   rows. Rows: archguide, the plain MLP, the three gradient boosting libraries, the random forest,
   RealMLP-TD and TabM-D. A summary ranks the models on each data set by test MSE (regression) or log
   loss (classes) and gives each model's mean rank and the geometric mean of its error divided by the
   best error, with each data set's ratio.
6. suite_noise: the same eleven tables, each with 10 noise columns and a noise category.

Columns: the test metric (mean ± spread over seeds, and each seed's value), trainable parameters
(networks), fit seconds, and where the truth is known the precision of the top-k features of the
models that rank features (k: the informative features; on table 2 the informative and redundant).
Every seed draws its own data (synthetic), sample, split and model seeds.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import resource
import subprocess
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pandas as pd
from sklearn.compose import make_column_selector, make_column_transformer
from sklearn.datasets import make_classification, make_friedman1
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.metrics import accuracy_score, log_loss, mean_squared_error, r2_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import LabelEncoder, OneHotEncoder, StandardScaler

RESULTS = Path(__file__).parent / "results"
SEEDS = (0, 1, 2)
MLP_EPOCHS, MLP_BATCH, MLP_PATIENCE = 300, 32, 20
COST_EPOCHS, COST_BATCH = 5, 64


# ---------------------------------------------------------------- data


@dataclass
class Data:
    """One data set drawn for one seed."""

    name: str
    X: pd.DataFrame
    y: np.ndarray
    task: str  # "regression" | "classification"
    informative: list[str] | None = None  # the oracle MLP's features
    relevant: list[str] | None = None  # the truth the top-k precision is measured against


def _columns(n):
    return [f"x{i}" for i in range(n)]


def friedman(seed, n_rows=2000, n_features=50):
    X, y = make_friedman1(n_samples=n_rows, n_features=n_features, noise=1.0, random_state=seed)
    X = pd.DataFrame(X, columns=_columns(n_features))
    truth = _columns(5)
    return Data(f"Friedman #1 ({n_features} features)", X, y, "regression", truth, truth)


def classification(seed, n_rows=3000):
    X, y = make_classification(
        n_samples=n_rows, n_features=60, n_informative=6, n_redundant=6, shuffle=False, random_state=seed
    )  # unshuffled: 6 informative, then 6 redundant, then noise
    X = pd.DataFrame(X, columns=_columns(60))
    return Data("make_classification (60 features)", X, y, "classification", _columns(6), _columns(12))


def _with_noise(X, seed):
    rng = np.random.default_rng(seed + 1000)
    noise = pd.DataFrame(rng.normal(size=(len(X), 10)), columns=[f"noise{i}" for i in range(10)], index=X.index)
    levels = pd.Categorical.from_codes(rng.integers(0, 5, len(X)), categories=list("abcde"))
    return pd.concat([X, noise], axis=1).assign(noise_level=levels)


def _shipped(package, relative):
    """The path of a file inside an installed package, without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None:
        raise ImportError(f"{package} is not installed (pip install -e '.[peers]')")
    return Path(next(iter(spec.submodule_search_locations))) / relative


def _table(name, frame, y, task, seed, noise):
    """A real table's Data: categories as pandas categoricals; with ``noise``, 10 noise columns and a noise category."""
    frame = frame.copy()
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]) and not isinstance(
            frame[column].dtype, pd.CategoricalDtype
        ):
            frame[column] = frame[column].astype("category")
    name = f"{name} ({len(frame):,} rows)"
    if noise:
        return Data(f"{name} + noise", _with_noise(frame, seed), np.asarray(y), task)
    return Data(name, frame.reset_index(drop=True), np.asarray(y), task)


def _sample(frame, n_rows, seed):
    if n_rows is None or n_rows >= len(frame):
        return frame.reset_index(drop=True)
    return frame.sample(n=n_rows, random_state=seed).reset_index(drop=True)


def diamonds(seed, n_rows=10_000, noise=True):
    """Regression of log10 price (53,940 diamonds, a seeded sample); ordered categories. plotnine (MIT),
    from ggplot2 (MIT)."""
    frame = _sample(pd.read_csv(_shipped("plotnine", "data/diamonds.csv")), n_rows, seed)
    order = {
        "cut": ["Fair", "Good", "Very Good", "Premium", "Ideal"],
        "color": list("JIHGFED"),
        "clarity": ["I1", "SI2", "SI1", "VS2", "VS1", "VVS2", "VVS1", "IF"],
    }
    for name, levels in order.items():
        frame[name] = pd.Categorical(frame[name], categories=levels, ordered=True)
    y = np.log10(frame.pop("price").to_numpy(dtype=float))
    return _table("diamonds", frame, y, "regression", seed, noise)


def affairs(seed, n_rows=None, noise=True):
    """Binary: any affair (6,366 women); two occupations as categories. Fair (1978), statsmodels (BSD-3;
    "included with permission of the author")."""
    frame = _sample(pd.read_csv(_shipped("statsmodels", "datasets/fair/fair.csv")), n_rows, seed)
    y = (frame.pop("affairs").to_numpy() > 0).astype(int)
    for name in ("occupation", "occupation_husb"):
        frame[name] = pd.Categorical(frame[name].astype(int).map(lambda code: f"occupation {code}"))
    return _table("affairs", frame, y, "classification", seed, noise)


def txhousing(seed, n_rows=None, noise=True):
    """Regression of log10 median sale price by city and month (46 cities, a high-cardinality category;
    gaps in sales, listings and inventory). ``volume`` is left out: divided by ``sales`` it is the mean
    price, a near copy of the target. plotnine (MIT), from ggplot2 (MIT; TAMU Real Estate Center)."""
    frame = pd.read_csv(_shipped("plotnine", "data/txhousing.csv")).dropna(subset=["median"])
    frame = _sample(frame.drop(columns=["volume", "date"]), n_rows, seed)
    y = np.log10(frame.pop("median").to_numpy(dtype=float))
    return _table("txhousing", frame, y, "regression", seed, noise)


def mpg(seed, n_rows=None, noise=True):
    """Regression of highway miles per gallon (234 cars; manufacturer, model (38 levels), transmission,
    drive, fuel and class as categories). ``cty`` is left out: city mileage is a near copy of the
    target. plotnine (MIT), from ggplot2 (MIT; fueleconomy.gov)."""
    frame = _sample(pd.read_csv(_shipped("plotnine", "data/mpg.csv")).drop(columns=["cty"]), n_rows, seed)
    y = frame.pop("hwy").to_numpy(dtype=float)
    return _table("mpg", frame, y, "regression", seed, noise)


def diabetes(seed, n_rows=None, noise=True):
    """Regression of disease progression after a year (442 patients, 10 numbers). scikit-learn (BSD-3),
    Efron et al. (2004)."""
    from sklearn.datasets import load_diabetes

    data = load_diabetes(as_frame=True, scaled=False)
    frame = _sample(data.frame, n_rows, seed)
    y = frame.pop("target").to_numpy(dtype=float)
    return _table("diabetes", frame, y, "regression", seed, noise)


def randhie(seed, n_rows=6_000, noise=True):
    """Regression of log(1 + doctor visits) in the RAND Health Insurance Experiment (20,190 people, a seeded
    sample; coinsurance, income, health). statsmodels (BSD-3; the data: public domain)."""
    frame = _sample(pd.read_csv(_shipped("statsmodels", "datasets/randhie/randhie.csv")), n_rows, seed)
    y = np.log1p(frame.pop("mdvis").to_numpy(dtype=float))
    return _table("randhie", frame, y, "regression", seed, noise)


def grunfeld(seed, n_rows=None, noise=True):
    """Regression of log10 gross investment (11 US firms, 1935-1954, 220 rows; the firm as a category).
    statsmodels (BSD-3; the data: public domain)."""
    frame = _sample(pd.read_csv(_shipped("statsmodels", "datasets/grunfeld/grunfeld.csv")), n_rows, seed)
    y = np.log10(frame.pop("invest").to_numpy(dtype=float))
    return _table("grunfeld", frame, y, "regression", seed, noise)


def anes96(seed, n_rows=None, noise=True):
    """Binary: a vote for Dole over Clinton in the 1996 American National Election Study (944 voters; 9
    numbers and ordered codes). statsmodels (BSD-3; the data: public domain)."""
    path = _shipped("statsmodels", "datasets/anes96/anes96.csv")
    frame = pd.read_csv(path, sep="\t").rename(columns=lambda name: name.strip("'"))
    frame = _sample(frame, n_rows, seed)
    y = frame.pop("vote").to_numpy(dtype=int)
    return _table("anes96", frame, y, "classification", seed, noise)


def penguins(seed, n_rows=None, noise=True):
    """Three species of penguin (344 birds; island and sex as categories; gaps, two birds with no
    measurements). plotnine (MIT), from palmerpenguins (CC0)."""
    frame = _sample(pd.read_csv(_shipped("plotnine", "data/penguins.csv")), n_rows, seed)
    y = frame.pop("species").astype(str).to_numpy()
    return _table("penguins", frame, y, "classification", seed, noise)


def breast_cancer(seed, n_rows=None, noise=True):
    """Binary: malignant or benign (569 tumours, 30 numbers). scikit-learn (BSD-3), from UCI (CC BY 4.0)."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    frame = _sample(data.frame, n_rows, seed)
    y = frame.pop("target").to_numpy(dtype=int)
    return _table("breast cancer", frame, y, "classification", seed, noise)


def wine(seed, n_rows=None, noise=True):
    """Three cultivars of wine (178 wines, 13 numbers). scikit-learn (BSD-3), from UCI (CC BY 4.0)."""
    from sklearn.datasets import load_wine

    data = load_wine(as_frame=True)
    frame = _sample(data.frame, n_rows, seed)
    y = frame.pop("target").to_numpy(dtype=int)
    return _table("wine", frame, y, "classification", seed, noise)


def _published(loader):
    """``loader`` without the noise columns (the same name, for ``--data``)."""

    def published(seed, **sizes):
        return loader(seed, noise=False, **sizes)

    published.__name__ = loader.__name__
    return published


SUITE = [diamonds, txhousing, randhie, mpg, diabetes, grunfeld, affairs, anes96, breast_cancer, penguins, wine]
TABLES = {
    "friedman": [friedman],
    "classification": [classification],
    "real": [diamonds, affairs],
    "suite": [_published(loader) for loader in SUITE],
    "suite_noise": SUITE,
}
ORDER = ["friedman", "classification", "real", "cost", "suite", "suite_noise"]  # the tables' numbers
# The suite's rows (--models changes them): the selectors (LassoNet, Boruta) and the oracle are left to tables 1-3.
SUITE_MODELS = [
    "archguide default",
    "plain MLP 64-32",
    "HistGradientBoosting",
    "CatBoost",
    "LightGBM",
    "random forest",
    "RealMLP-TD",
    "TabM-D",
]
QUICK_SIZES = {  # by loader name
    "friedman": {"n_rows": 1000},
    "classification": {"n_rows": 1500},
    "diamonds": {"n_rows": 3000},
    "affairs": {"n_rows": 3000},
    "txhousing": {"n_rows": 3000},
    "randhie": {"n_rows": 3000},
}
# The slowest peers take minutes per fit even on small data: --quick gives them a row that says so
# (name them with --models to run them anyway).
QUICK_LEAVES_OUT = ("LassoNet", "TabM-D")


# ---------------------------------------------------------------- models


@dataclass
class Fitted:
    predict: Callable  # X -> predictions (labels for classification)
    proba: Callable | None = None  # X -> class probabilities, classes in sorted order
    params: int | None = None  # trainable parameters (networks)
    ranking: pd.Series | None = None  # per column of X, higher = more important
    note: str = ""


def _encoder():
    """One-hot categories, impute and standardise numbers: what a user does for models without categories."""
    return make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore", sparse_output=False), make_column_selector(dtype_exclude="number")),
        (make_pipeline(SimpleImputer(), StandardScaler()), make_column_selector(dtype_include="number")),
    )


def _sources(encoder) -> list[str]:
    """The source column of each column the fitted encoder writes."""
    sources = []
    for _, transformer, columns in encoder.transformers_:
        if not len(columns) or transformer == "drop":  # a selector that chose nothing: nothing fitted
            continue
        if isinstance(transformer, OneHotEncoder):
            sources += [c for c, levels in zip(columns, transformer.categories_) for _ in levels]
        else:
            sources += list(columns)
    return sources


def _by_source(values, sources, columns) -> pd.Series:
    """Per-encoded-column importance -> per source column (the largest of its encoded columns)."""
    return pd.Series(np.asarray(values, dtype=float)).groupby(np.asarray(sources)).max().reindex(columns)


class PlainMLP:
    """Dense 64-32 ReLU on one-hot and standardised inputs (and target), Adam (1e-3), batch 32;
    20% of the training rows for early stopping on the validation loss (patience 20, best weights
    restored), at most 300 epochs: what a careful user writes by hand."""

    def __init__(self, task, seed, *, epochs=MLP_EPOCHS, batch_size=MLP_BATCH, patience=MLP_PATIENCE):
        self.task, self.seed, self.epochs, self.batch_size, self.patience = task, seed, epochs, batch_size, patience

    def fit(self, X, y):
        import keras

        keras.utils.set_random_seed(self.seed)
        self.encoder_ = _encoder().fit(X)
        inputs = self.encoder_.transform(X).astype("float32")
        if self.task == "regression":
            self.mean_, self.scale_ = float(np.mean(y)), float(np.std(y))
            target, out, loss = (y - self.mean_) / self.scale_, keras.layers.Dense(1), "mse"
        else:
            self.labels_ = LabelEncoder().fit(y)
            target = self.labels_.transform(y)
            out = keras.layers.Dense(len(self.labels_.classes_), activation="softmax")
            loss = "sparse_categorical_crossentropy"
        self.model_ = keras.Sequential(
            [
                keras.Input(shape=(inputs.shape[1],)),
                keras.layers.Dense(64, activation="relu"),
                keras.layers.Dense(32, activation="relu"),
                out,
            ]
        )
        self.model_.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss)
        stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=self.patience, restore_best_weights=True)
        self.model_.fit(
            inputs, target, validation_split=0.2, epochs=self.epochs, batch_size=self.batch_size, callbacks=[stop],
            verbose=0, shuffle=True,
        )  # fmt: skip
        return self

    def _raw(self, X):
        return self.model_.predict(self.encoder_.transform(X).astype("float32"), verbose=0, batch_size=4096)

    def predict(self, X):
        raw = self._raw(X)
        if self.task == "regression":
            return raw[:, 0] * self.scale_ + self.mean_
        return self.labels_.inverse_transform(np.argmax(raw, axis=1))

    def predict_proba(self, X):
        return self._raw(X)


def _mlp(X, y, task, seed, columns=None):
    model = PlainMLP(task, seed).fit(X if columns is None else X[columns], y)
    select = (lambda Z: Z) if columns is None else (lambda Z: Z[columns])
    proba = None if task == "regression" else (lambda Z: model.predict_proba(select(Z)))
    return Fitted(lambda Z: model.predict(select(Z)), proba, model.model_.count_params())


def fit_archguide(X, y, task, seed, **params):
    import archguide as ag

    cls = ag.ImportanceGuidedRegressor if task == "regression" else ag.ImportanceGuidedClassifier
    est = cls(random_state=seed, **params).fit(X, y)
    n_params = sum(int(np.prod(w.shape)) for w in est.network_.trainable_weights)
    ranking = est.scores_.importances.reindex(X.columns)
    return Fitted(est.predict, getattr(est, "predict_proba", None), n_params, ranking)


def fit_plain(X, y, task, seed):
    return _mlp(X, y, task, seed)


def fit_oracle(X, y, task, seed, informative):
    return _mlp(X, y, task, seed, columns=informative)


def fit_hgb(X, y, task, seed):
    cls = HistGradientBoostingRegressor if task == "regression" else HistGradientBoostingClassifier
    model = cls(categorical_features="from_dtype", random_state=seed).fit(X, y)
    return Fitted(model.predict, getattr(model, "predict_proba", None))


def fit_forest(X, y, task, seed):
    cls = RandomForestRegressor if task == "regression" else RandomForestClassifier
    model = make_pipeline(_encoder(), cls(n_jobs=-1, random_state=seed)).fit(X, y)
    ranking = _by_source(model[-1].feature_importances_, _sources(model[0]), X.columns)
    return Fitted(model.predict, getattr(model, "predict_proba", None), ranking=ranking)


def fit_lassonet(X, y, task, seed):
    """LassoNet's path (hidden layer 100, its defaults), the point of the path with the best
    validation loss on its own 10% of the training rows."""
    import torch
    from lassonet import LassoNetClassifier, LassoNetRegressor

    torch.manual_seed(seed)
    encoder = _encoder().fit(X)
    inputs = encoder.transform(X).astype("float32")
    if task == "regression":
        mean, scale = float(np.mean(y)), float(np.std(y))
        model = LassoNetRegressor(random_state=seed, torch_seed=seed, verbose=0, device="cpu")
        target = ((y - mean) / scale).astype("float32")
    else:
        labels = LabelEncoder().fit(y)
        model = LassoNetClassifier(random_state=seed, torch_seed=seed, verbose=0, device="cpu")
        target = labels.transform(y)
    path = model.path(inputs, target, return_state_dicts=True)
    model.load(min(path, key=lambda item: item.val_loss).state_dict)
    n_params = sum(p.numel() for p in model.model.parameters())
    ranking = _by_source(np.asarray(model.feature_importances_), _sources(encoder), X.columns)

    def encoded(Z):
        return encoder.transform(Z).astype("float32")

    if task == "regression":
        return Fitted(lambda Z: model.predict(encoded(Z)).reshape(-1) * scale + mean, None, n_params, ranking)
    return Fitted(
        lambda Z: labels.inverse_transform(model.predict(encoded(Z))),
        lambda Z: model.predict_proba(encoded(Z)),
        n_params,
        ranking,
    )


def fit_boruta(X, y, task, seed):
    """Boruta (a forest of depth 5 as its authors suggest, trees 'auto'), then the plain MLP on the
    columns it confirms (the best-ranked one if it confirms none)."""
    from boruta import BorutaPy

    encoder = _encoder().fit(X)
    inputs, sources = encoder.transform(X), _sources(encoder)
    forest = (RandomForestRegressor if task == "regression" else RandomForestClassifier)(
        n_jobs=-1, max_depth=5, random_state=seed
    )
    selector = BorutaPy(forest, n_estimators="auto", random_state=seed, verbose=0).fit(inputs, np.asarray(y))
    keep = np.flatnonzero(selector.support_)
    if len(keep) == 0:
        keep = np.array([int(np.argmin(selector.ranking_))])
    chosen = sorted({sources[i] for i in keep}, key=list(X.columns).index)
    fitted = _mlp(X, y, task, seed, columns=chosen)
    fitted.ranking = _by_source(-selector.ranking_.astype(float), sources, X.columns)
    fitted.note = f"{len(chosen)} columns kept"
    return fitted


def _threads():
    """The cores this process may run on (``taskset`` pins a run to fewer than the machine has)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def fit_catboost(X, y, task, seed):
    """CatBoost at its defaults, the categories as its categorical features (a gap as its own level)."""
    from catboost import CatBoostClassifier, CatBoostRegressor

    categorical = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]

    def prepared(Z):
        Z = Z.copy()
        for column in categorical:
            Z[column] = Z[column].astype(object).fillna("nan").astype(str)  # CatBoost takes strings; a gap: "nan"
        return Z

    cls = CatBoostRegressor if task == "regression" else CatBoostClassifier
    model = cls(random_seed=seed, verbose=0, thread_count=_threads(), allow_writing_files=False)
    model.fit(prepared(X), np.asarray(y), cat_features=categorical)
    proba = None if task == "regression" else (lambda Z: model.predict_proba(prepared(Z)))
    return Fitted(lambda Z: np.ravel(model.predict(prepared(Z))), proba)  # labels come as a column


def fit_lightgbm(X, y, task, seed):
    """LightGBM at its defaults, pandas' categories as its categorical features."""
    from lightgbm import LGBMClassifier, LGBMRegressor

    cls = LGBMRegressor if task == "regression" else LGBMClassifier
    model = cls(random_state=seed, n_jobs=_threads(), verbose=-1).fit(X, y)
    return Fitted(model.predict, getattr(model, "predict_proba", None))


def _pytabkit(name):
    def fit(X, y, task, seed, n_threads=None):
        """``n_threads``: PyTorch's threads (default the cores this process may run on)."""
        import pytabkit

        for logger in ("pytorch_lightning", "lightning.pytorch", "lightning"):  # "GPU available: False", tips
            logging.getLogger(logger).setLevel(logging.ERROR)
        cls = getattr(pytabkit, f"{name}_{'Regressor' if task == 'regression' else 'Classifier'}")
        model = cls(device="cpu", random_state=seed, n_threads=n_threads or _threads(), verbosity=0)
        # pytabkit refuses gaps in numbers: fill them with the training means, as a user would
        means = X.select_dtypes("number").mean()

        def filled(Z):
            return Z.fillna(means) if Z[means.index].isna().any().any() else Z

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PyTorch and Lightning's deprecation and copy notices
            model.fit(filled(X), np.array(y))
        proba = (lambda Z: model.predict_proba(filled(Z))) if task != "regression" else None
        return Fitted(lambda Z: model.predict(filled(Z)), proba)

    return fit


def _archguide_with(classes=None, **params):
    """The default estimator with ``params`` changed, and ``classes`` changed too for classification."""

    def fit(X, y, task, seed):
        return fit_archguide(X, y, task, seed, **params, **((classes or {}) if task == "classification" else {}))

    return fit


# The default estimator with one setting changed: the ablation rows (name them with --models).
ABLATIONS = {
    # the former default (lr_patience=5), a longer patience, dropout and the cosine schedule (which ignores
    # lr_patience)
    "archguide lr_patience=5": {"lr_patience": 5},
    "archguide lr_patience=15": {"lr_patience": 15},
    "archguide dropout=0.1": {"dropout": 0.1},
    "archguide lr_schedule=cosine": {"lr_schedule": "cosine"},
    # AdamW at a tenth of the decay measured before (0.1, at batch 64); rare categories pooled; categories
    # through a learned vector per level
    "archguide weight_decay=0.01": {"weight_decay": 0.01},
    "archguide min_frequency=5": {"min_frequency": 5},
    "archguide category_embedding=8": {"category_embedding": 8},
    # early stopping's patience restarted only by a relative fall of the validation loss (1%, 0.3%)
    "archguide min_improvement=0.01": {"min_improvement": 0.01},
    "archguide min_improvement=0.003": {"min_improvement": 0.003},
    "archguide no re-scoring": {"rescoring": None},  # not run on the suite
    # the default before that (batch 64) and the rows measured against it (ran before steps_per_execution,
    # at lr_patience=5, which their parameters keep)
    "archguide batch_size=64": {"batch_size": 64, "lr_patience": 5},
    "archguide batch_size=64, ensemble_size=8": {"batch_size": 64, "lr_patience": 5, "ensemble_size": 8},
    "archguide batch_size=64, weight_decay=0.1": {"batch_size": 64, "lr_patience": 5, "weight_decay": 0.1},
    "archguide batch_size=64, label_smoothing=0.1 (classes)": {
        "batch_size": 64,
        "lr_patience": 5,
        "classes": {"label_smoothing": 0.1},
    },
    # the default before that (standard scaling, l1=1e-3) and three rows measured against it; these and
    # the embedding row ran at batch 64 and lr_patience=5, the defaults then, which their parameters keep
    "archguide standard, l1=1e-3": {"scaling": "standard", "l1": 1e-3, "batch_size": 64, "lr_patience": 5},
    "archguide standard, l1=1e-4": {"scaling": "standard", "l1": 1e-4, "batch_size": 64, "lr_patience": 5},
    "archguide standard, l1=0": {"scaling": "standard", "l1": 0.0, "batch_size": 64, "lr_patience": 5},
    "archguide standard, l1=1e-3, gradient re-scoring": {
        "scaling": "standard",
        "l1": 1e-3,
        "rescoring": "gradient",
        "batch_size": 64,
        "lr_patience": 5,
    },
    "archguide embedding=8": {"embedding": 8, "batch_size": 64, "lr_patience": 5},
}
ORACLE = "oracle MLP (informative only)"
MODELS: dict[str, tuple[Callable, str | None]] = {
    # name -> (fit, the package it needs)
    "archguide default": (fit_archguide, None),
    "plain MLP 64-32": (fit_plain, None),
    "HistGradientBoosting": (fit_hgb, None),
    "random forest": (fit_forest, None),
    "CatBoost": (fit_catboost, "catboost"),
    "LightGBM": (fit_lightgbm, "lightgbm"),
    "LassoNet": (fit_lassonet, "lassonet"),
    "Boruta + plain MLP": (fit_boruta, "boruta"),
    "RealMLP-TD": (_pytabkit("RealMLP_TD"), "pytabkit"),
    "TabM-D": (_pytabkit("TabM_D"), "pytabkit"),
    ORACLE: (fit_oracle, None),
    **{name: (_archguide_with(**params), None) for name, params in ABLATIONS.items()},
}


# ---------------------------------------------------------------- evaluation


@dataclass
class Result:
    data: str
    model: str
    task: str
    metrics: dict[str, list[float]] = field(default_factory=dict)  # name -> one value per seed
    seconds: list[float] = field(default_factory=list)
    params: int | None = None
    precision: list[float] = field(default_factory=list)
    k: int | None = None
    status: str = ""  # "" when it ran; else why not
    note: str = ""


def _scores(data, fitted, X_test, y_test):
    if data.task == "regression":
        pred = fitted.predict(X_test)
        return {"test MSE": mean_squared_error(y_test, pred), "R²": r2_score(y_test, pred)}
    out = {"accuracy": accuracy_score(y_test, fitted.predict(X_test))}
    if fitted.proba is not None:
        proba = np.clip(fitted.proba(X_test), 1e-7, 1)  # a zero probability would make the log loss infinite
        out["log loss"] = log_loss(y_test, proba / proba.sum(axis=1, keepdims=True), labels=np.unique(data.y))
    return out


def run_table(loaders, models, seeds, quick=False, log=print, left_out=()):
    """Every model in ``models`` on every data set of ``loaders``, over ``seeds``; ``left_out``
    models get a row that says so. Each seed's data and split are drawn once, for every model."""
    results = []
    for loader in loaders:
        sizes = QUICK_SIZES.get(loader.__name__, {}) if quick else {}
        try:
            draws = [(seed, loader(seed, **sizes)) for seed in seeds]
        except ImportError as error:
            log(f"  {loader.__name__}: {error}")
            continue
        splits = [
            (seed, data, *train_test_split(data.X, data.y, test_size=0.2, random_state=seed,
                                           stratify=data.y if data.task == "classification" else None))
            for seed, data in draws
        ]  # fmt: skip
        first = draws[0][1]
        for name in models:
            fit, package = MODELS[name]
            if name == ORACLE and first.informative is None:
                continue  # no truth to give the oracle
            result = Result(first.name, name, first.task)
            results.append(result)
            if package and importlib.util.find_spec(package) is None:
                result.status = f"not installed (pip install {package})"
                continue
            if name in left_out:
                result.status = "left out by --quick (minutes per fit; run without --quick)"
                continue
            for seed, data, X_tr, X_te, y_tr, y_te in splits:
                extra = {"informative": data.informative} if name == ORACLE else {}
                start = time.perf_counter()
                try:
                    with warnings.catch_warnings():
                        # joblib inside peers: "sklearn.utils.parallel.delayed should be used with ..."
                        warnings.filterwarnings("ignore", message=".*sklearn.utils.parallel.delayed")
                        fitted = fit(X_tr, y_tr, data.task, seed, **extra)
                except Exception as error:  # a peer that fails gets a row that says why
                    traceback.print_exc()
                    result.status = f"failed: {type(error).__name__}: {str(error)[:80]}"
                    break
                result.seconds.append(time.perf_counter() - start)
                for metric, value in _scores(data, fitted, X_te, y_te).items():
                    result.metrics.setdefault(metric, []).append(float(value))
                result.params, result.note = fitted.params, fitted.note
                if fitted.ranking is not None and data.relevant is not None:
                    result.k = len(data.relevant)
                    top = fitted.ranking.fillna(-np.inf).sort_values(ascending=False, kind="stable").index[: result.k]
                    result.precision.append(len(set(top) & set(data.relevant)) / result.k)
                log(f"  {data.name} · {name} · seed {seed}: {result.seconds[-1]:.1f} s, "
                    + ", ".join(f"{m} {v[-1]:.4g}" for m, v in result.metrics.items()))  # fmt: skip
    return results


def _digits(values):
    """Decimals that show four significant figures of small figures (an MSE of log prices), else three."""
    mean = abs(float(np.mean(values)))
    return 3 if mean >= 0.1 or mean == 0 else 3 - int(np.floor(np.log10(mean)))


def _spread(values):
    d = _digits(values)
    return f"{np.mean(values):.{d}f} ± {np.std(values):.{d}f}" if values else ""


def frame(results, seeds):
    """One data set's results as a table: a row per model."""
    rows = []
    for r in results:
        row = {"model": r.model}
        if r.status:
            row["status"] = r.status
        else:
            for metric, values in r.metrics.items():
                row[metric] = _spread(values)
            main = next(iter(r.metrics))
            if len(seeds) > 1:
                d = _digits(r.metrics[main])
                row[f"{main} per seed"] = " ".join(f"{v:.{d}f}" for v in r.metrics[main])
            row["fit s"] = f"{np.mean(r.seconds):.1f}"
            row["params"] = f"{r.params:,}" if r.params else ""
            if r.precision:
                row[f"top-{r.k} precision"] = f"{np.mean(r.precision):.2f}"
            if r.note:
                row["note"] = r.note
        rows.append(row)
    table = pd.DataFrame(rows).fillna("")
    return table[[c for c in table.columns if c != "status"] + (["status"] if "status" in table else [])]


def markdown(table: pd.DataFrame) -> str:
    """A pipe table (pandas' to_markdown needs tabulate, which the project does not depend on)."""
    cells = [list(map(str, table.columns))] + [[str(v) for v in row] for row in table.to_numpy()]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _get(results, model, data=None):
    for r in results:
        if r.model == model and (data is None or r.data == data) and not r.status and r.seconds:
            return r
    return None


def targets(table_name, results):
    """The issue's targets for this table, each met or missed, with the figures."""
    lines = []
    ours = [r for r in results if r.model == "archguide default" and not r.status]
    if table_name == "friedman" and ours:
        a = ours[0]
        mse = np.mean(a.metrics["test MSE"])
        lines.append(f"archguide test MSE {mse:.3f} (target <= 1.25): {'met' if mse <= 1.25 else 'MISSED'}")
        for peer in ("RealMLP-TD", "TabM-D"):
            p = _get(results, peer)
            if p is None:
                lines.append(f"below {peer} on the same seeds: not measured ({peer} did not run)")
                continue
            below = [x < y for x, y in zip(a.metrics["test MSE"], p.metrics["test MSE"])]
            lines.append(f"below {peer} on every seed: {sum(below)} of {len(below)} seeds "
                         f"({'met' if all(below) else 'MISSED'})")  # fmt: skip
        lasso = _get(results, "LassoNet")
        if lasso is None:
            lines.append("fit time at most a fifth of LassoNet's: not measured (LassoNet did not run)")
        else:
            ratio = np.mean(a.seconds) / np.mean(lasso.seconds)
            lines.append(f"fit time / LassoNet's: {ratio:.2f} (target <= 0.20): {'met' if ratio <= 0.2 else 'MISSED'}")
        all_top = all(p == 1.0 for p in a.precision)
        lines.append(f"every informative feature in the top 5: {sum(p == 1.0 for p in a.precision)} of "
                     f"{len(a.precision)} seeds ({'met' if all_top else 'MISSED'})")  # fmt: skip
    if table_name == "classification" and ours:
        plain = _get(results, "plain MLP 64-32")
        if plain is not None:
            gap = np.mean(ours[0].metrics["accuracy"]) - np.mean(plain.metrics["accuracy"])
            lines.append(f"accuracy minus the plain MLP's: {100 * gap:+.1f} points (target >= +2.0): "
                         f"{'met' if gap >= 0.02 else 'MISSED'}")  # fmt: skip
    if table_name.startswith("suite"):
        return _suite_targets(table_name, results)
    if table_name == "real":
        for a in ours:
            main = next(iter(a.metrics))
            sign = 1 if main == "test MSE" else -1  # lower is better for MSE
            parts = []
            for peer in ("plain MLP 64-32", "HistGradientBoosting", "RealMLP-TD"):
                p = _get(results, peer, a.data)
                if p is not None:
                    gap = np.mean(a.metrics[main]) - np.mean(p.metrics[main])
                    better = sign * gap < 0
                    parts.append(f"vs {peer} {gap:+.4f} ({'better' if better else 'worse'})")
            lines.append(f"{a.data}: {main} gap " + "; ".join(parts))
    return lines


GRADIENT_BOOSTING = ("HistGradientBoosting", "CatBoost", "LightGBM")


def _error(result):
    """The error a table ranks by: test MSE (regression), log loss (classification); mean over seeds."""
    values = result.metrics.get("test MSE", result.metrics.get("log loss"))
    return float(np.mean(values)) if values else np.nan


def suite_summary(results):
    """``(summary, ratios)``: per model its mean rank over the data sets, and the geometric mean of its
    error divided by the best error on each data set; ``ratios`` holds each data set's ratio.

    A model is ranked on the data sets it ran on (its count is in "data sets"); ranks are averaged over ties.
    """
    errors = pd.DataFrame(
        [{"model": r.model, "data": r.data, "error": _error(r)} for r in results if not r.status and r.metrics]
    )
    if errors.empty:
        return pd.DataFrame(), pd.DataFrame()
    wide = errors.pivot(index="model", columns="data", values="error")
    wide = wide[[d for d in dict.fromkeys(r.data for r in results) if d in wide]]
    ratios = wide / wide.min(axis=0)
    ranks = wide.rank(axis=0, method="average")
    summary = pd.DataFrame({
        "mean rank": ranks.mean(axis=1),
        "error / best (geometric mean)": np.exp(np.log(ratios).mean(axis=1)),
        "worst error / best": ratios.max(axis=1),
        "data sets": wide.notna().sum(axis=1),
        "fit s (mean)": [np.mean([np.mean(r.seconds) for r in results if r.model == m and r.seconds])
                         for m in wide.index],
    }).sort_values(["mean rank", "error / best (geometric mean)"])  # fmt: skip
    return summary, ratios.loc[summary.index]


def ablation_summary(results):
    """Each archguide row (the default and every ablation that ran) ranked against the peers alone, as if
    it were the only archguide row: its mean rank and geometric-mean error / best, and the default's
    figures beside it."""
    variants = [m for m in ["archguide default", *ABLATIONS] if _get(results, m) is not None]
    peers_only = [r for r in results if not r.model.startswith("archguide")]
    rows = []
    for variant in variants:
        summary, _ = suite_summary([*peers_only, *(r for r in results if r.model == variant)])
        rank, ratio = summary.loc[variant, "mean rank"], summary.loc[variant, "error / best (geometric mean)"]
        rows.append({"archguide row": variant, "mean rank": rank, "error / best (geometric mean)": ratio,
                     "worst error / best": summary.loc[variant, "worst error / best"],
                     "fit s (mean)": summary.loc[variant, "fit s (mean)"],
                     "rank among": f"{len(summary)} rows"})  # fmt: skip
    return pd.DataFrame(rows)


def _formatted(table):
    """The summary's figures as printed: ranks and fit seconds to 2 and 1 decimals, error ratios to 3."""
    digits = {"mean rank": 2, "error / best (geometric mean)": 3, "worst error / best": 3, "fit s (mean)": 1}
    return table.assign(**{column: table[column].map(f"{{:.{d}f}}".format) for column, d in digits.items()})


def _ablation_markdown(table):
    return "Ablation: each archguide row ranked against the peers alone\n\n" + markdown(_formatted(table))


def _summary_markdown(summary, ratios):
    shown = _formatted(summary)
    per_data = ratios.map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
    per_data.columns = [c.split(" (")[0] for c in per_data.columns]
    return (
        "Summary (rank and error / best by test MSE, or by log loss for classes; over the data sets above)\n\n"
        + markdown(shown.reset_index())
        + "\n\nError / best error, per data set\n\n"
        + markdown(per_data.reset_index())
    )


def _suite_targets(table_name, results):
    results = [r for r in results if r.model not in ABLATIONS]  # the targets are the default's
    summary, _ = suite_summary(results)
    ours = "archguide default"
    if summary.empty or ours not in summary.index:
        return []
    lines = []
    rank, ratio = summary.loc[ours, "mean rank"], summary.loc[ours, "error / best (geometric mean)"]
    if table_name == "suite_noise":
        best = summary["mean rank"].idxmin()
        verdict = "met" if rank <= summary["mean rank"].min() else "MISSED"
        lines.append(f"best mean rank of all rows: archguide {rank:.2f}, the best ({best}) "
                     f"{summary.loc[best, 'mean rank']:.2f} ({verdict})")  # fmt: skip
        lines.append(
            f"geometric-mean error / best {ratio:.3f} (target <= 1.03): {'met' if ratio <= 1.03 else 'MISSED'}"
        )
    else:
        for peer in ("RealMLP-TD", "TabM-D"):
            if peer not in summary.index:
                lines.append(f"ahead of {peer} on mean rank: not measured ({peer} did not run)")
                continue
            theirs = summary.loc[peer, "mean rank"]
            lines.append(f"ahead of {peer} on mean rank: {rank:.2f} against {theirs:.2f} "
                         f"({'met' if rank < theirs else 'MISSED'})")  # fmt: skip
        boosting = [m for m in GRADIENT_BOOSTING if m in summary.index]
        if boosting:
            best = min(boosting, key=lambda m: summary.loc[m, "error / best (geometric mean)"])
            theirs = summary.loc[best, "error / best (geometric mean)"]
            lines.append(
                f"geometric-mean error / best within 3% of the best gradient boosting ({best} {theirs:.3f}): "
                f"{ratio:.3f}, {ratio / theirs:.3f} of it ({'met' if ratio <= 1.03 * theirs else 'MISSED'})"
            )
    for a in (r for r in results if r.model == ours and not r.status and r.data.startswith("diamonds")):
        hgb = _get(results, "HistGradientBoosting", a.data)
        if hgb is not None:
            at_most = [x <= y for x, y in zip(a.metrics["test MSE"], hgb.metrics["test MSE"])]
            lines.append(f"{a.data}: test MSE at most HistGradientBoosting's on {sum(at_most)} of {len(at_most)} "
                         f"seeds ({'met' if all(at_most) else 'MISSED'})")  # fmt: skip
    slower = []
    for a in (r for r in results if r.model == ours and not r.status and r.seconds):
        peer = _get(results, "RealMLP-TD", a.data)
        if peer is not None and np.mean(a.seconds) > np.mean(peer.seconds):
            slower.append(f"{a.data.split(' (')[0]} {np.mean(a.seconds) / np.mean(peer.seconds):.2f}")
    if _get(results, "RealMLP-TD") is not None:
        lines.append(
            "fit time at most RealMLP-TD's on every data set: "
            + ("met" if not slower else "MISSED (archguide / RealMLP-TD: " + ", ".join(slower) + ")")
        )
    return lines


# ---------------------------------------------------------------- cost


def _memory():
    """(resident MiB now, peak resident MiB) of this process. Linux's /proc/self/status: getrusage's
    ru_maxrss would carry the parent's peak across fork and exec."""
    try:
        fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024
    except (OSError, KeyError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return peak, peak


def cost_run(model, n_rows, seed=0):
    """One fit in this process: its seconds and the process's peak resident memory (MiB)."""
    import archguide  # noqa: F401  (TensorFlow's import is not part of the fit)

    data = friedman(seed, n_rows=n_rows, n_features=20)
    before, _ = _memory()
    start = time.perf_counter()
    if model == "archguide default":
        fit_archguide(data.X, data.y, "regression", seed, epochs=COST_EPOCHS, batch_size=COST_BATCH,
                      patience=COST_EPOCHS + 1, lr_patience=None)  # fmt: skip
    else:
        PlainMLP("regression", seed, epochs=COST_EPOCHS, batch_size=COST_BATCH, patience=COST_EPOCHS + 1).fit(
            data.X, data.y
        )
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak MiB": _memory()[1], "before MiB": before}


def cost_table(sizes, log=print):
    rows = []
    for n_rows in sizes:
        for model in ("archguide default", "plain MLP 64-32"):
            done = subprocess.run(
                [sys.executable, "-m", "benchmarks.peers", "--cost-run", model, str(n_rows)],
                capture_output=True, text=True, cwd=Path(__file__).parent.parent,
            )  # fmt: skip
            if done.returncode != 0:
                log(done.stderr[-2000:])
                rows.append({"rows": n_rows, "model": model, "status": f"failed (exit {done.returncode})"})
                continue
            measured = json.loads(done.stdout.strip().splitlines()[-1])
            log(f"  cost · {model} · {n_rows:,} rows: {measured['seconds']:.1f} s, {measured['peak MiB']:.0f} MiB")
            rows.append({"rows": n_rows, "model": model, **measured})
    table = pd.DataFrame(rows)
    lines = []
    if "seconds" in table:
        wide = table.pivot(index="rows", columns="model", values="seconds")
        if len(wide) > 1:
            growth = wide.iloc[-1] / wide.iloc[0]
            ours, plain = growth.get("archguide default"), growth.get("plain MLP 64-32")
            lines.append(f"fit time growth {wide.index[0]:,} -> {wide.index[-1]:,} rows: archguide x{ours:.1f}, "
                         f"plain MLP x{plain:.1f} (target: no faster than the plain MLP's): "
                         f"{'met' if ours <= plain else 'MISSED'}")  # fmt: skip
    shown = table.copy()
    for column, digits in (("seconds", 1), ("peak MiB", 0), ("before MiB", 0)):
        if column in shown:
            shown[column] = shown[column].map(lambda v, d=digits: "" if pd.isna(v) else f"{v:,.{d}f}")
    shown["rows"] = shown["rows"].map("{:,}".format)
    return table, shown.rename(columns={"before MiB": "MiB before the fit"}).fillna(""), lines


# ---------------------------------------------------------------- plot and main


def plot(all_results, cost, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    titles = dict.fromkeys(r.data for r in all_results)
    unique = [(title, [r for r in all_results if r.data == title]) for title in titles]
    n = len(unique) + (cost is not None and "seconds" in cost)
    n = max(n, 1)
    columns, rows = min(n, 3), -(-n // 3)
    fig, grid = plt.subplots(rows, columns, figsize=(5.2 * columns, 3.8 * rows), squeeze=False)
    axes = grid.ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    for ax, (title, rs) in zip(axes, unique):
        ran = [r for r in rs if not r.status and r.metrics]
        if not ran:
            continue
        main = next(iter(ran[0].metrics))
        names = [r.model for r in ran]
        means = [np.mean(r.metrics[main]) for r in ran]
        spreads = [np.std(r.metrics[main]) for r in ran]
        colours = ["tab:red" if name == "archguide default" else "tab:gray" for name in names]
        ax.barh(range(len(ran)), means, xerr=spreads, color=colours)
        ax.set_yticks(range(len(ran)), names, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(main + (" (lower is better)" if main == "test MSE" else " (higher is better)"))
        ax.set_title(title, fontsize=9)
        if main == "accuracy":
            ax.set_xlim(min(means) - 0.05, min(1.0, max(means) + 0.02))
    if cost is not None and "seconds" in cost:
        ax = axes[n - 1]
        for model, part in cost.dropna(subset=["seconds"]).groupby("model"):
            ax.loglog(part["rows"], part["seconds"], marker="o", label=model,
                      color="tab:red" if model == "archguide default" else "tab:gray")  # fmt: skip
        ax.set_xlabel("rows (20 features)")
        ax.set_ylabel(f"fit seconds ({COST_EPOCHS} epochs)")
        ax.set_title("How cost grows", fontsize=9)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one seed, small sizes (under ten minutes)")
    parser.add_argument("--tables", nargs="+", choices=ORDER, default=ORDER)
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=None, metavar="MODEL")
    parser.add_argument("--seeds", nargs="+", type=int, default=None)
    parser.add_argument(
        "--data", nargs="+", choices=[loader.__name__ for loaders in TABLES.values() for loader in loaders],
        help="only these data sets of the tables; the tables' other rows keep their saved results (as with --models)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=None, help="where the tables and plot go")
    parser.add_argument(
        "--rebuild", action="store_true",
        help="run nothing: rewrite tables 1-3's Markdown, peers.md and the plot from the saved <table>.json",
    )  # fmt: skip
    parser.add_argument("--cost-run", nargs=2, metavar=("MODEL", "ROWS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.models_given = args.models is not None
    args.models = args.models or [name for name in MODELS if name not in ABLATIONS]
    if args.cost_run:
        print(json.dumps(cost_run(args.cost_run[0], int(args.cost_run[1]))))
        return
    seeds = args.seeds or ((0,) if args.quick else SEEDS)
    out = args.out or (RESULTS / "quick" if args.quick else RESULTS)
    out.mkdir(parents=True, exist_ok=True)
    import archguide

    header = (f"Peer suite: seeds {list(seeds)}, {os.cpu_count()} cores, archguide {archguide.__version__}"
              + (", quick sizes" if args.quick else ""))  # fmt: skip
    print(header, flush=True)
    cost = None
    for name in args.tables:
        start = time.perf_counter()
        if name == "cost" and args.rebuild:
            continue
        if name == "cost":
            sizes = (1_000, 10_000) if args.quick else (1_000, 10_000, 100_000, 1_000_000)
            cost, shown, lines = cost_table(sizes)
            title = f"4. How cost grows (Friedman #1, 20 features, {COST_EPOCHS} epochs, batch {COST_BATCH})"
        else:
            saved = out / f"{name}.json"
            loaders = [loader for loader in TABLES[name] if not args.data or loader.__name__ in args.data]
            if not loaders or (args.rebuild and not saved.exists()):
                continue
            before = [Result(**r) for r in json.loads(saved.read_text())] if saved.exists() else []
            if args.rebuild:
                results = before
            else:
                left_out = QUICK_LEAVES_OUT if args.quick and not args.models_given else ()
                models = args.models if args.models_given or not name.startswith("suite") else SUITE_MODELS
                results = run_table(loaders, models, seeds, quick=args.quick, left_out=left_out)
                if args.data or args.models_given:  # what was not run again stays as saved
                    rerun = {(r.data, r.model) for r in results}
                    results = [r for r in before if (r.data, r.model) not in rerun] + results
            shown = {
                data: frame([r for r in results if r.data == data], seeds)
                for data in dict.fromkeys(r.data for r in results)
            }
            lines = targets(name, results)
            if args.quick and lines:
                lines.insert(0, "quick sizes and one seed: the targets are set for the full tables (orientation only)")
            title = f"{ORDER.index(name) + 1}. {name} (seeds {list(seeds)})"
        if isinstance(shown, dict):
            body = "\n\n".join(f"{data}\n\n{markdown(table)}" for data, table in shown.items())
            if name.startswith("suite"):
                ablations = [r for r in results if r.model in ABLATIONS]
                summary, ratios = suite_summary([r for r in results if r.model not in ABLATIONS])
                if not summary.empty:
                    body += "\n\n" + _summary_markdown(summary, ratios)
                if ablations and _get(results, "archguide default") is not None:
                    body += "\n\n" + _ablation_markdown(ablation_summary(results))
        else:
            body = markdown(shown)
        text = f"## {title}\n\n{body}\n\n" + "".join(f"- {line}\n" for line in lines)
        if args.rebuild:
            text += f"\n(rebuilt from {name}.json)\n"
        else:
            merged = (args.data or args.models_given) and name != "cost"
            what = ", ".join([*(args.data or []), *(args.models if args.models_given else [])])
            ran = f" for {what}; the table's other rows as saved before" if merged else ""
            text += f"\n({time.perf_counter() - start:.0f} s{ran})\n"
        (out / f"{name}.md").write_text(text)
        raw = cost.to_dict("records") if name == "cost" else [asdict(r) for r in results]
        (out / f"{name}.json").write_text(json.dumps(raw, indent=1))
        print("\n" + text, flush=True)
    write_summary(out, header)
    print(f"Tables and plot written to {out}")


def write_summary(out, header):
    """peers.md and peers.png from every table in ``out``, this run's and earlier runs' (a table run
    alone, with --tables, replaces only its own part)."""
    names = [name for name in ORDER if (out / f"{name}.json").exists()]
    sections = [f"# {header}\n"] + [(out / f"{name}.md").read_text() for name in names if (out / f"{name}.md").exists()]
    (out / "peers.md").write_text("\n".join(sections))
    results, cost = [], None
    for name in names:
        raw = json.loads((out / f"{name}.json").read_text())
        if name == "cost":
            cost = pd.DataFrame(raw)
        elif not name.startswith("suite"):  # the suite's 22 data sets are in its summary, not the plot
            results += [Result(**r) for r in raw]
    plot(results, cost, out / "peers.png")


if __name__ == "__main__":
    main()
