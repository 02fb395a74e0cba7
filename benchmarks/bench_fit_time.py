"""Where a fit's time goes, and what the training loop's options save: one table, CPU seconds.

    python -m benchmarks.bench_fit_time                  # three tables of the peer suite, two seeds
    python -m benchmarks.bench_fit_time --data mpg --seeds 0

Each row fits the default estimator on a table of the peer suite (as published; 20% held out) with
one change to how Keras trains it:

- ``arrays``: the training and validation rows passed to ``Model.fit`` as arrays: Keras builds a new
  ``tf.data`` pipeline every epoch and for every validation pass (how fits ran before), one step per
  call into the graph;
- ``pipeline, one step per call``: the rows as ``tf.data`` pipelines built once per fit, one training
  step per call into the graph (archguide's default before ``steps_per_execution``);
- ``pipeline``: archguide's default: the pipelines, and up to 16 steps per call (the largest divisor
  of the steps per epoch, ``estimators._steps_per_execution``);
- ``pipeline + jit_compile``: the default, compiled with XLA;
- ``pipeline + steps_per_execution=8``: eight steps per call whatever the steps per epoch.

Figures are CPU seconds of this process (user + system, every thread), so that a run beside other
work still compares its rows; wall seconds are printed beside them. The test error shows the
options change the result only as a new shuffle order does.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pandas as pd
from sklearn.metrics import log_loss, mean_squared_error
from sklearn.model_selection import train_test_split

VARIANTS = (
    "arrays",
    "pipeline, one step per call",
    "pipeline",
    "pipeline + jit_compile",
    "pipeline + steps_per_execution=8",
)


def _cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def fit_once(data, seed, variant):
    import keras

    import archguide as ag
    from archguide.estimators import _training as estimators

    compile_ = keras.Model.compile

    def compile_with(self, *args, **kwargs):
        if "jit_compile" in variant:
            kwargs["jit_compile"] = True
        if "steps_per_execution" in variant:
            kwargs["steps_per_execution"] = 8
        return compile_(self, *args, **kwargs)

    feed, estimators._FEED = estimators._FEED, "arrays" if variant == "arrays" else "dataset"
    most = estimators._MAX_STEPS_PER_EXECUTION
    if variant in ("arrays", "pipeline, one step per call"):
        estimators._MAX_STEPS_PER_EXECUTION = 1
    keras.Model.compile = compile_with
    try:
        X_tr, X_te, y_tr, y_te = train_test_split(
            data.X, data.y, test_size=0.2, random_state=seed,
            stratify=data.y if data.task == "classification" else None,
        )  # fmt: skip
        cls = ag.ImportanceGuidedRegressor if data.task == "regression" else ag.ImportanceGuidedClassifier
        cpu, wall = _cpu(), time.perf_counter()
        est = cls(random_state=seed).fit(X_tr, y_tr)
        cpu, wall = _cpu() - cpu, time.perf_counter() - wall
    finally:
        estimators._FEED, keras.Model.compile = feed, compile_
        estimators._MAX_STEPS_PER_EXECUTION = most
    if data.task == "regression":
        error, metric = mean_squared_error(y_te, est.predict(X_te)), "test MSE"
    else:
        error, metric = log_loss(y_te, est.predict_proba(X_te), labels=est.classes_), "log loss"
    return {"cpu s": cpu, "wall s": wall, "epochs": est.n_epochs_, metric: error}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", default=["mpg", "anes96", "diamonds"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    args = parser.parse_args(argv)
    from benchmarks import peers

    sizes = {"diamonds": {"n_rows": 3000}}  # a 2,400-row fit: every row count of the suite's middle
    rows = []
    for name in args.data:
        loader = getattr(peers, name)
        for seed in args.seeds:
            data = loader(seed, noise=False, **sizes.get(name, {}))
            for variant in args.variants:
                measured = fit_once(data, seed, variant)
                rows.append({"data": data.name, "seed": seed, "variant": variant, **measured})
                print(f"  {data.name} · seed {seed} · {variant}: "
                      + ", ".join(f"{k} {v:.4g}" for k, v in measured.items()), flush=True)  # fmt: skip
    table = pd.DataFrame(rows)
    errors = [c for c in table.columns if c in ("test MSE", "log loss")]
    summary = table.groupby(["data", "variant"], sort=False).agg(
        {"cpu s": "mean", "wall s": "mean", "epochs": "mean", **dict.fromkeys(errors, "mean")}
    )
    if "arrays" in args.variants:

        def to_arrays(values):  # each table's figure divided by its "arrays" row's
            return values / values.xs("arrays", level="variant").reindex(values.index.get_level_values(0)).to_numpy()

        summary["cpu / arrays"] = to_arrays(summary["cpu s"])
        summary["cpu per epoch / arrays"] = to_arrays(summary["cpu s"] / summary["epochs"])
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(f"\nFit time by training-loop option (seeds {args.seeds}; means; CPU seconds of the process)")
        print(summary.round(4).to_string())
    return summary


if __name__ == "__main__":
    main()
