"""Training-time overhead of ImportanceRescoring, per method, in one run.

An archguide model (planned from score_features, 128 first-layer units) trains
on Friedman #1 at 50,000 x 50 (5 informative features, 45 noise) for a few epochs
with batch size 256: once without the callback, then once per method with
ImportanceRescoring every epoch at its default settings (validation sample of
2,048 rows). Each configuration starts from the same initial weights; the first,
untimed runs warm up TensorFlow, and the configurations are timed interleaved (best of 3).

Targets: gradient re-scoring adds at most 10% to training time; permutation at
most 30% with default settings.

A second table measures what the re-scoring is for, gate separation: on Friedman
#1 with 45 noise features (3,000 training rows, 1,000 validation rows, 64 units,
20 epochs, batch 64), the mean |gate| of the 5 informative features over that of
the 45 noise features at the end of training, per method and per seed (the data
set, the scores and the model's weights all change with the seed). It decides the
default of ``n_repeats`` for permutation re-scoring: every re-scoring draws fresh
shuffles, so one shuffle per re-scoring is averaged across re-scorings by the
smoothing.

Usage: python benchmarks/bench_rescoring.py [--epochs N] [--repeats N] [--seeds N]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
from sklearn.datasets import make_friedman1

import archguide as ag


class TimedRescoring(ag.ImportanceRescoring):
    """ImportanceRescoring that also adds up the wall time spent in its own hooks."""

    seconds = 0.0

    def on_train_begin(self, logs=None):
        start = time.perf_counter()
        super().on_train_begin(logs)
        self.seconds = time.perf_counter() - start

    def on_epoch_end(self, epoch, logs=None):
        start = time.perf_counter()
        super().on_epoch_end(epoch, logs)
        self.seconds += time.perf_counter() - start


# (label, options): the defaults of each method, and permutation with three shuffles per re-scoring.
CONFIGS = [
    ("gradient", {"method": "gradient"}),
    ("permutation", {"method": "permutation"}),
    ("permutation x3", {"method": "permutation", "n_repeats": 3}),
    ("ablation", {"method": "ablation"}),
    ("weights", {"method": "weights"}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per configuration (best kept)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the gate-separation table")
    args = parser.parse_args()
    overhead(args)
    separation(args.seeds)


def separation(n_seeds: int) -> None:
    """Mean |gate| of informative over noise features after 20 epochs, per method and seed."""
    import keras

    configs = [("gradient", {"method": "gradient"}), *[c for c in CONFIGS if c[1]["method"] == "permutation"]]
    ratios = {label: [] for label, _ in configs}
    print("\nGate separation: Friedman #1, 5 informative + 45 noise features, 3,000 training rows, 64 units,")
    print("20 epochs, re-scoring every epoch; mean |gate| informative / noise (higher separates better)")
    header = f"{'method':<14} | " + " | ".join(f"{'seed ' + str(s):>8}" for s in range(n_seeds)) + " |     mean"
    print(header)
    print("-" * len(header))
    for seed in range(n_seeds):
        X, y = make_friedman1(n_samples=4000, n_features=50, noise=1.0, random_state=seed)
        X, y = X.astype("float32"), ((y - y.mean()) / y.std()).astype("float32")
        plan = ag.plan_architecture(ag.score_features(X[:3000], y[:3000], random_state=seed), total_units=64)
        for label, options in configs:
            keras.utils.set_random_seed(seed)
            model = ag.build_model(plan, seed=seed)
            callback = ag.ImportanceRescoring((X[3000:], y[3000:]), random_state=seed, **options)
            model.fit(X[:3000], y[:3000], epochs=20, batch_size=64, verbose=0, callbacks=[callback])
            gates = np.abs(model.get_layer("gate").get_gates())
            ratios[label].append(gates[:5].mean() / gates[5:].mean())
    for label, values in ratios.items():
        print(f"{label:<14} | " + " | ".join(f"{v:>7.1f}x" for v in values) + f" | {np.mean(values):>7.1f}x")


def overhead(args) -> None:
    """Training time with and without the callback, per method."""

    X, y = make_friedman1(n_samples=60_000, n_features=50, noise=1.0, random_state=0)
    X = X.astype("float32")
    y = ((y - y.mean()) / y.std()).astype("float32")
    X_train, y_train, X_val, y_val = X[:50_000], y[:50_000], X[50_000:], y[50_000:]
    plan = ag.plan_architecture(ag.score_features(X_train, y_train, random_state=0), total_units=128)
    model = ag.build_model(plan, seed=0)
    initial = model.get_weights()

    def train(callbacks) -> float:
        model.set_weights(initial)
        start = time.perf_counter()
        model.fit(X_train, y_train, epochs=args.epochs, batch_size=256, verbose=0, callbacks=callbacks)
        return time.perf_counter() - start

    for _ in range(2):  # warm-up: tracing and first-call costs land here, not in a timed run
        train([])
    # Interleave the configurations so that drift in machine speed hits them alike; keep the best.
    configs = [("(none)", None), *CONFIGS]
    best = {label: float("inf") for label, _ in configs}
    inside = {label: float("inf") for label, _ in CONFIGS}
    for _ in range(args.repeats):
        for label, options in configs:
            callbacks = [] if options is None else [TimedRescoring((X_val, y_val), **options)]
            best[label] = min(best[label], train(callbacks))
            if callbacks:
                inside[label] = min(inside[label], callbacks[0].seconds)
    base = best["(none)"]
    print(
        f"ImportanceRescoring overhead: 50,000 x 50, {args.epochs} epochs, batch 256, "
        f"re-scoring every epoch, {os.cpu_count()} cores, best of {args.repeats} interleaved runs"
    )
    header = (
        f"{'method':<14} | {'train s':>8} | {'overhead (with/without)':>23} | "
        f"{'s in callback':>13} | {'callback / training':>19}"
    )
    print(header)
    print("-" * len(header))
    print(f"{'(none)':<14} | {base:>8.2f} | {'-':>23} | {'-':>13} | {'-':>19}")
    for label, _ in CONFIGS:
        extra = best[label] - base
        print(
            f"{label:<14} | {best[label]:>8.2f} | {100 * extra / base:>22.1f}% | {inside[label]:>13.3f} | "
            f"{100 * inside[label] / base:>18.1f}%"
        )
    print(
        "\n'overhead' compares wall times of separate runs, so it carries the machine's run-to-run drift;"
        "\n'callback / training' is the time spent inside the callback over the training time without it."
    )
    print("\nTargets: gradient <= 10%, permutation <= 30% (default settings).")


if __name__ == "__main__":
    np.random.seed(0)  # noqa: NPY002 (keras' global seed for anything unseeded)
    main()
