"""A high-cardinality categorical column: one-hot, pooled rare categories, and the peers; test MSE.

    python -m benchmarks.bench_categories                          # 2,000 and 6,000 rows, three seeds
    python -m benchmarks.bench_categories --rows 2000 --seeds 0 --models "archguide default" CatBoost

The table is synthetic, with a known truth: ``shop`` has 200 categories with Zipf frequencies
(the most frequent in about a fifth of the rows; in 2,000 rows more than half of the shops seen
are seen fewer than five times; the first line printed says); each shop has a hidden pair
``(a, b)`` drawn from a standard normal, and

    y = 2 a + b * x0 + sin(pi x1 x2) + x3 + 0.5 e,      e ~ N(0, 1),

so the shop acts on its own (``2 a``) and through ``x0`` (``b * x0``). ``x0``-``x3`` are standard
normals and ten standard-normal columns are noise. 20% of the rows, drawn at random, are held out
(a shop seen only there is unseen at fit time). The archguide rows differ only in how
``shop`` enters the network: every category a one-hot feature (the default), the rare ones pooled
(``min_frequency``, ``max_categories``), or each level a learned vector (``category_embedding``).
The peers are those of ``benchmarks.peers`` at their defaults (HistGradientBoosting with its native
categories, CatBoost, LightGBM, the plain MLP).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pandas as pd
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import train_test_split

from benchmarks import peers

N_SHOPS = 200
ARCHGUIDE = {
    "archguide default": {},
    "archguide min_frequency=5": {"min_frequency": 5},
    "archguide max_categories=32": {"max_categories": 32},
    "archguide category_embedding=8": {"category_embedding": 8},
}
PEERS = ("HistGradientBoosting", "CatBoost", "LightGBM", "plain MLP 64-32")


def shops(n_rows: int, seed: int):
    """The table and its target (see the module)."""
    rng = np.random.default_rng(seed)
    frequency = 1.0 / np.arange(1, N_SHOPS + 1)
    names = np.array([f"shop{i:03d}" for i in rng.permutation(N_SHOPS)])  # frequency is not the name's order
    hidden = rng.normal(size=(N_SHOPS, 2))
    index = rng.choice(N_SHOPS, size=n_rows, p=frequency / frequency.sum())
    x = rng.normal(size=(n_rows, 4))
    a, b = hidden[index, 0], hidden[index, 1]
    y = 2 * a + b * x[:, 0] + np.sin(np.pi * x[:, 1] * x[:, 2]) + x[:, 3] + 0.5 * rng.normal(size=n_rows)
    X = pd.DataFrame(x, columns=[f"x{i}" for i in range(4)])
    X = X.assign(**{f"noise{i}": rng.normal(size=n_rows) for i in range(10)})
    X.insert(0, "shop", pd.Categorical(names[index], categories=sorted(names)))
    return X, y


def fit_once(name: str, X_train, y_train, seed: int):
    if name in ARCHGUIDE:
        return peers.fit_archguide(X_train, y_train, "regression", seed, **ARCHGUIDE[name])
    return peers.MODELS[name][0](X_train, y_train, "regression", seed)


def run(rows, seeds, models) -> pd.DataFrame:
    records = []
    for n_rows in rows:
        for seed in seeds:
            X, y = shops(n_rows, seed)
            X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=seed)
            for name in models:
                start = time.perf_counter()
                fitted = fit_once(name, X_train, y_train, seed)
                seconds = time.perf_counter() - start
                mse = mean_squared_error(y_test, fitted.predict(X_test))
                print(f"  {n_rows:,} rows · {name} · seed {seed}: {seconds:.1f} s, test MSE {mse:.4f}", flush=True)
                records.append({"rows": n_rows, "model": name, "seed": seed, "mse": mse, "seconds": seconds})
    return pd.DataFrame(records)


def summary(records: pd.DataFrame) -> pd.DataFrame:
    """Per row count and model: mean test MSE ± its standard deviation, each seed's, and fit seconds."""
    out = []
    for (n_rows, model), part in records.groupby(["rows", "model"], sort=False):
        out.append(
            {
                "rows": f"{n_rows:,}",
                "model": model,
                "test MSE": f"{part['mse'].mean():.4f} ± {part['mse'].std(ddof=0):.4f}",
                "per seed": " ".join(f"{v:.4f}" for v in part["mse"]),
                "fit s": f"{part['seconds'].mean():.1f}",
            }
        )
    return pd.DataFrame(out)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[2000, 6000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--models", nargs="+", default=[*ARCHGUIDE, *PEERS])
    args = parser.parse_args(argv)
    unknown = [m for m in args.models if m not in ARCHGUIDE and m not in peers.MODELS]
    if unknown:
        parser.error(f"unknown models: {', '.join(unknown)}; known: {', '.join([*ARCHGUIDE, *PEERS])}")
    X, _ = shops(args.rows[0], args.seeds[0])
    counts = X["shop"].value_counts()
    print(
        f"shop: {N_SHOPS} categories; in {args.rows[0]:,} rows (seed {args.seeds[0]}) {int((counts > 0).sum())} seen, "
        f"{int(((counts > 0) & (counts < 5)).sum())} of them fewer than five times, the most frequent in "
        f"{counts.iloc[0] / len(X):.0%} of the rows"
    )
    records = run(args.rows, args.seeds, args.models)
    print()
    print(peers.markdown(summary(records)))


if __name__ == "__main__":
    main()
