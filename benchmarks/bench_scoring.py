"""score_features against the source notes' reference recipe, side by side in one run.

Reference: ``RandomForestRegressor()`` (scikit-learn's defaults: 100 full-depth
trees, one core) fitted on an 80% split, then ``permutation_importance(n_repeats=10)``
on the 20% test split. archguide: ``score_features`` with its defaults (one core),
and again with ``n_jobs=-1``.

Data: Friedman #1 (``make_friedman1``, noise=1): y depends on x0..x4, the rest is
noise. Each measurement runs in a fresh child process, which makes the data
itself, so that its peak memory (resident set, data and imports included) is its
own; "data MB" is the size of X alone.

Columns: wall seconds of the scoring call; peak resident memory; speed-up over
the reference at the same size; whether the top-5 features agree with the
reference's; Pearson correlation of the five informative features'
importances with the reference's.

Usage: python benchmarks/bench_scoring.py [--quick] [--skip-large-reference]
(--quick runs only the 20,000 x 20 comparison; --skip-large-reference leaves out the
reference at 200,000 x 50, which takes about 27 minutes.)
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import time

import numpy as np

SIZES = [(20_000, 20, True), (200_000, 50, True), (1_000_000, 100, False)]


def _measure(kind: str, n: int, p: int, queue) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from sklearn.datasets import make_friedman1

    X, y = make_friedman1(n_samples=n, n_features=p, noise=1.0, random_state=0)
    if kind == "reference":
        from sklearn.ensemble import RandomForestRegressor
        from sklearn.inspection import permutation_importance
        from sklearn.model_selection import train_test_split

        start = time.perf_counter()
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
        forest = RandomForestRegressor(random_state=0).fit(X_train, y_train)
        result = permutation_importance(forest, X_test, y_test, n_repeats=10, random_state=0)
        seconds = time.perf_counter() - start
        importances = result.importances_mean
    else:
        import archguide as ag

        n_jobs = -1 if kind.endswith("n_jobs=-1") else None
        start = time.perf_counter()
        scores = ag.score_features(X, y, random_state=0, n_jobs=n_jobs)
        seconds = time.perf_counter() - start
        importances = scores.importances.to_numpy()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put((seconds, peak_mb, X.nbytes / 2**20, importances))


def measure(kind: str, n: int, p: int):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_measure, args=(kind, n, p, queue))
    child.start()
    result = queue.get()
    child.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the 20,000 x 20 comparison")
    parser.add_argument("--skip-large-reference", action="store_true", help="no reference at 200,000 x 50")
    args = parser.parse_args()
    sizes = SIZES[:1] if args.quick else SIZES
    if args.skip_large_reference:
        sizes = [(n, p, ref and n <= 20_000) for n, p, ref in sizes]

    header = (
        f"{'rows x features':>17} | {'method':<26} | {'wall s':>7} | {'peak MB':>8} | {'data MB':>7} | "
        f"{'speed-up':>8} | {'top-5 same':>10} | {'Pearson':>7}"
    )
    print(f"score_features vs reference on Friedman #1, {os.cpu_count()} cores")
    print(header)
    print("-" * len(header))
    for n, p, with_reference in sizes:
        kinds = (["reference"] if with_reference else []) + ["score_features", "score_features n_jobs=-1"]
        ref = None
        for kind in kinds:
            seconds, peak, data_mb, imp = measure(kind, n, p)
            label = "reference (RF + perm. imp.)" if kind == "reference" else kind
            if kind == "reference":
                ref = (seconds, imp)
                speed, same, pearson = "1.0x", "-", "-"
            elif ref is not None:
                speed = f"{ref[0] / seconds:.1f}x"
                same = "yes" if set(np.argsort(-imp)[:5]) == set(np.argsort(-ref[1])[:5]) else "NO"
                pearson = f"{np.corrcoef(imp[:5], ref[1][:5])[0, 1]:.3f}"
            else:
                speed = pearson = "n/a"
                same = "yes" if set(np.argsort(-imp)[:5]) == set(range(5)) else "NO"
                same += " (truth)"
            print(
                f"{n:>9,} x {p:<5} | {label:<26} | {seconds:>7.2f} | {peak:>8.0f} | {data_mb:>7.0f} | "
                f"{speed:>8} | {same:>10} | {pearson:>7}",
                flush=True,
            )
    print("\nTargets: >= 30x faster than the reference at 20,000 x 20 with the same top 5 and Pearson >= 0.95;")
    print("1,000,000 x 100 in under 30 s with peak memory under 3 GiB (3072 MB).")


if __name__ == "__main__":
    main()
