"""Streaming a table bigger than memory against the in-memory fit, side by side in one run.

Data (written first, in chunks, never whole in memory): a synthetic Parquet dataset of ``--rows``
rows (default 10^7) x 50 columns with a known truth: 48 numeric columns (float32, N(0, 1)), of which
x0..x9 carry the signal (linear, a sine, a product, a square), one categorical column of 8 levels
with an effect, and one boolean column of noise; y is their sum plus N(0, 0.5^2) noise. Files of
500,000 rows in row groups of 100,000. A separate file of 100,000 test rows, from another seed.

Runs, each in a fresh child process (its peak resident memory is read from /proc/self/status,
VmHWM: data, TensorFlow and the fit together), the default regressor with ``epochs=--epochs`` (the
same fixed number of epochs everywhere; early stopping cannot end a run that short):

- in memory: ``pandas.read_parquet`` of the first 10^6 rows, ``fit(X, y)``, for ``--seeds`` seeds
  (the spread of the test MSE);
- streamed from the Parquet files: the first 10^6 rows (its first two files) and every row;
- streamed from a dask DataFrame (``dask.dataframe.read_parquet``) on a ``LocalCluster`` of two
  worker processes on loopback: 10^6 rows and every row (the peak memory of the process that trains
  and of each worker).

Rows per second = epochs trained x training rows / fit seconds (the pass over the data, scoring and
the checks included). Targets: peak memory at most 3 GiB at every row count; streaming throughput
at least two thirds of the in-memory fit's; the streamed fit's test MSE on the same rows within the
spread (min..max) of the in-memory fits'.

Usage: python -m benchmarks.bench_streaming [--rows N] [--epochs E] [--seeds S] [--data DIR] [--quick]
[--out JSON] (``--rebuild JSON`` prints the table of a saved run)
(--quick: 10^5 rows in files of 25,000, the in-memory fit on 5 x 10^4. The data is written once into DIR, by default
``benchmarks/.data/streaming``, and reused when its rows match.)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

N_FEATURES = 50
FILE_ROWS = 500_000
ROW_GROUP = 100_000
TEST_ROWS = 100_000
LEVELS = [f"level_{i}" for i in range(8)]
LEVEL_EFFECT = np.linspace(-1.0, 1.0, len(LEVELS))
GIB = 1024.0


def chunk(seed: int, n: int):
    """``n`` rows of the known truth (a pandas DataFrame with ``y``), from ``seed``."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 48), dtype=np.float32)
    level = rng.integers(len(LEVELS), size=n)
    y = (
        X[:, 0] + 2 * X[:, 1] - X[:, 2] + 1.5 * np.sin(2 * X[:, 3]) + X[:, 4] * X[:, 5] + 0.5 * X[:, 6] ** 2
        + 0.8 * X[:, 7] - 0.6 * X[:, 8] + 0.4 * X[:, 9] + LEVEL_EFFECT[level]
        + 0.5 * rng.standard_normal(n)
    )  # fmt: skip
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(48)])
    frame["level"] = pd.Categorical.from_codes(level, LEVELS)
    frame["flag"] = rng.random(n) < 0.5
    frame["y"] = y.astype(np.float64)
    return frame


def write_data(directory: Path, n_rows: int, file_rows: int = FILE_ROWS) -> list[str]:
    """The dataset's files of ``file_rows`` rows (written once; reused when their rows match)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    marker = directory / "rows.json"
    files = [str(directory / "train" / f"part-{i:04d}.parquet") for i in range(-(-n_rows // file_rows))]
    if marker.exists() and json.loads(marker.read_text()) == {"rows": n_rows, "file rows": file_rows}:
        return files
    (directory / "train").mkdir(parents=True, exist_ok=True)
    for old in (directory / "train").glob("*.parquet"):
        old.unlink()
    for i, path in enumerate(files):
        n = min(file_rows, n_rows - i * file_rows)
        table = pa.Table.from_pandas(chunk(1000 + i, n), preserve_index=False)
        pq.write_table(table, path, row_group_size=min(ROW_GROUP, file_rows // 5))
    pq.write_table(pa.Table.from_pandas(chunk(7, TEST_ROWS), preserve_index=False), directory / "test.parquet")
    marker.write_text(json.dumps({"rows": n_rows, "file rows": file_rows}))
    return files


def _peak_mib(pid: str = "self") -> float:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmHWM"].split()[0]) / 1024


def one(job: dict) -> dict:
    """One fit in this process (the child): seconds, epochs, training rows, peak memory, test MSE."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import pandas as pd

    import archguide as ag

    files, epochs, seed = job["files"], job["epochs"], job["seed"]
    est = ag.ImportanceGuidedRegressor(epochs=epochs, random_state=seed)
    workers = []
    start = time.perf_counter()
    if job["kind"] == "in memory":
        frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
        frame = frame.iloc[: job["rows"]]
        start = time.perf_counter()  # the read is not the fit's
        est.fit(frame.drop(columns="y"), frame["y"])
        del frame
    elif job["kind"] == "Parquet":
        est.fit(files, target="y")
    else:
        import dask.dataframe as dd
        from dask.distributed import Client, LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None) as cluster:
            with Client(cluster) as client:
                est.fit(dd.read_parquet(files), target="y")
                workers = list(client.run(lambda: _peak_mib()).values())
    seconds = time.perf_counter() - start
    test = pd.read_parquet(job["test"])
    mse = float(np.mean((est.predict(test.drop(columns="y")) - test["y"].to_numpy()) ** 2))
    n_train = job["rows"] - len(est.validation_indices_)
    return {
        "seconds": seconds, "epochs": est.n_epochs_, "train rows": n_train, "peak MiB": _peak_mib(),
        "worker peak MiB": max(workers) if workers else None, "test MSE": mse,
    }  # fmt: skip


def run(job: dict) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_streaming", "--one", json.dumps(job)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"{job['kind']} at {job['rows']:,} rows failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--data", default="benchmarks/.data/streaming")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--skip", nargs="*", default=[], help="leave out runs: 'dask', 'all rows'")
    parser.add_argument("--out", help="also save the measurements as JSON (benchmarks/results/streaming.json)")
    parser.add_argument("--rebuild", metavar="JSON", help="print the table of saved measurements, run nothing")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(one(json.loads(args.one))))
        return
    if args.rebuild:
        saved = json.loads(Path(args.rebuild).read_text())
        print_table([tuple(pair) for pair in saved["results"]], saved["epochs"])
        print(f"\n(rebuilt from {args.rebuild})")
        return
    total, small, file_rows = (100_000, 50_000, 25_000) if args.quick else (args.rows, 1_000_000, FILE_ROWS)
    directory = Path(args.data)
    start = time.perf_counter()
    files = write_data(directory, total, file_rows)
    print(f"data: {total:,} rows x {N_FEATURES} columns in {len(files)} files ({time.perf_counter() - start:.0f} s to "
          f"write or find); {TEST_ROWS:,} test rows")  # fmt: skip
    first = files[: -(-small // file_rows)]
    test = str(directory / "test.parquet")
    jobs = [
        {"kind": "in memory", "files": first, "rows": small, "seed": s, "epochs": args.epochs, "test": test}
        for s in range(args.seeds)
    ]
    jobs.append({"kind": "Parquet", "files": first, "rows": small, "seed": 0, "epochs": args.epochs, "test": test})
    if "all rows" not in args.skip:
        jobs.append({"kind": "Parquet", "files": files, "rows": total, "seed": 0, "epochs": args.epochs, "test": test})
    if "dask" not in args.skip:
        jobs.append({"kind": "dask", "files": first, "rows": small, "seed": 0, "epochs": args.epochs, "test": test})
        if "all rows" not in args.skip:
            jobs.append({"kind": "dask", "files": files, "rows": total, "seed": 0, "epochs": args.epochs, "test": test})
    results = []
    for job in jobs:
        result = run(job)
        results.append((job, result))
        print(f"  {job['kind']}, {job['rows']:,} rows, seed {job['seed']}: {result['seconds']:.0f} s, "
              f"{result['peak MiB']:.0f} MiB", flush=True)  # fmt: skip
    if args.out:
        Path(args.out).write_text(json.dumps({"epochs": args.epochs, "results": results}, indent=1))
    print_table(results, args.epochs)


def print_table(results, epochs: int) -> None:
    memory = [r for j, r in results if j["kind"] == "in memory"]
    in_rate = np.mean([r["epochs"] * r["train rows"] / r["seconds"] for r in memory])
    low, high = min(r["test MSE"] for r in memory), max(r["test MSE"] for r in memory)
    print(f"\nThe default regressor, epochs={epochs} (fixed), test MSE on {TEST_ROWS:,} held-out rows\n")
    print("| input                | rows       | seed | fit s  | epochs | rows / s | vs in memory | peak MiB | "
          "worker peak MiB | test MSE |")  # fmt: skip
    print("|----------------------|------------|------|--------|--------|----------|--------------|----------|"
          "-----------------|----------|")  # fmt: skip
    for job, r in results:
        rate = r["epochs"] * r["train rows"] / r["seconds"]
        worker = f"{r['worker peak MiB']:.0f}" if r["worker peak MiB"] else ""
        cells = [
            f"{job['kind']:<20}", f"{job['rows']:>10,}", f"{job['seed']:>4}", f"{r['seconds']:>6.1f}",
            f"{r['epochs']:>6}", f"{rate:>8,.0f}", f"{rate / in_rate:>12.2f}", f"{r['peak MiB']:>8,.0f}",
            f"{worker:>15}", f"{r['test MSE']:>8.4f}",
        ]  # fmt: skip
        print("| " + " | ".join(cells) + " |")
    print()
    streamed = [(j, r) for j, r in results if j["kind"] != "in memory"]
    peaks = {}
    for job, r in streamed:
        peaks[job["rows"]] = max(peaks.get(job["rows"], 0), r["peak MiB"], r["worker peak MiB"] or 0)
    largest = max(peaks.values())
    shown = ", ".join(f"{p:,.0f} MiB at {n:,} rows" for n, p in sorted(peaks.items()))
    print(f"- streamed peak memory (the process that trains, and each dask worker) at most 3 GiB at every row count: "
          f"{shown} ({'met' if largest <= 3 * GIB else 'MISSED'}); the in-memory fit's: "
          f"{max(r['peak MiB'] for r in memory):,.0f} MiB at {results[0][0]['rows']:,} rows")  # fmt: skip
    for job, r in streamed:
        rate = r["epochs"] * r["train rows"] / r["seconds"] / in_rate
        print(f"- {job['kind']}, {job['rows']:,} rows: throughput {rate:.2f} of the in-memory fit's (target >= 0.67: "
              f"{'met' if rate >= 2 / 3 else 'MISSED'})", end="")  # fmt: skip
        if job["files"] == results[0][0]["files"]:  # the in-memory fits' rows
            mse = r["test MSE"]
            where = "within: met" if low <= mse <= high else ("above: MISSED" if mse > high else "below: MISSED")
            better = " (lower than every in-memory fit's)" if mse < low else ""
            print(f"; test MSE {mse:.4f}{better} against the in-memory fits' {low:.4f}..{high:.4f} on the same rows "
                  f"({where})", end="")  # fmt: skip
        print()


if __name__ == "__main__":
    main()
