"""The ``archguide`` command line (also ``python -m archguide``).

Commands:

- ``archguide demo``: the main job on a built-in table (scikit-learn's
  diabetes data with a near-copy of ``bmi`` and three noise columns added, so
  that the grouping and the noise test have a known truth to find): scores,
  plan, training with re-scoring, a plain Keras MLP on the same split, a
  summary in the terminal and a report in ``./archguide-demo/`` (a previous
  demo there is replaced; any other non-empty directory is refused). Nothing
  is downloaded.
- ``archguide score data.csv --target y``: score the features of a file.
- ``archguide fit data.csv --target y --out runs/a``: score, plan and train;
  write a run directory (``model.keras``, ``config.yaml``, ``run.json``,
  ``scores.json``, ``plan.yaml``, ``history.csv``, ``rescoring.csv``,
  ``strengths.csv``, ``sensitivity.csv``, ``report.html``, ``report.md``,
  ``figures/``; see :mod:`archguide.report`). The task follows
  ``scoring.task`` (``auto``: from the target). A non-empty ``--out`` is
  refused before any work unless ``--overwrite``; the run is written to a
  temporary directory beside it and moved into place at the end, so a failed
  fit leaves the old one as it was.
- ``archguide tune data.csv --target y --max-trials 20 --out runs/b``: search
  the planning and training options with KerasTuner (the ``tuning`` section:
  tuner, folds, search space), refit the best on all rows and write the same
  run directory as ``fit``, plus ``tuning.csv`` (one row per trial) and an
  "Architecture search" section in the report.
- ``archguide fit data_dir/ --target y --out run`` and ``archguide predict
  run/model.keras data_dir/ --out preds.parquet``: a directory of Parquet files
  is a dataset bigger than memory, streamed by both (``archguide.datasets``);
  ``tune`` takes a file.
- ``archguide predict model.keras data.csv --out preds.csv``: predictions of a
  saved estimator (Parquet when ``--out`` ends in ``.parquet`` or ``.pq``), from
  the model's columns in any order (other columns, such as the target or an
  id, are ignored; a missing one is an error). For a classifier: the predicted
  label and one probability column per class, ``proba_<class>``. ``--id
  COLUMN`` (default: the run's ``data.id``, when the model sits in its run
  directory) writes that column first, as the row key.
- ``archguide report runs/a``: rebuild ``report.html``, ``report.md`` and the
  figures from a run directory's files (no data, no training).

Data files are CSV, or Parquet by the extension ``.parquet`` / ``.pq`` (with
the ``parquet`` extra: pyarrow), all read by one function: a file without rows
or with a repeated header name is refused; a leading unnamed column of unique
integers (the index ``DataFrame.to_csv`` writes by default) is left out with a
one-line warning; ``data.drop`` leaves columns out and ``data.id`` names a row
key that is never a feature. Every output path is checked before any work: it
may not be an input (data, model, config), lie inside the run directory that is
read, be a directory where a file goes or the working directory for a run, and
its folder must be writable; ``--overwrite`` never removes the data or config
being read. Options come from a YAML file (``--config
configs/default.yaml``) and dotted overrides (``--set training.epochs=50``).
Every error prints one line and exits with status 1 (2 for a malformed
command line; ``-v`` shows the traceback of an unexpected one). Only the
commands that train or load a model import TensorFlow, without its C++
start-up lines unless ``-v``. Output files
are written all or nothing: every file goes to a temporary place first and
all are moved into place only when all succeeded; a replaced file keeps its
mode, a new one gets the umask's. The plot's format comes from its extension
(``.png``, ``.pdf``, ``.svg``, ...).
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from archguide._files import write_files

__all__ = ["main"]

_VERBOSE = False


def _import_keras() -> None:
    """Import Keras (and TensorFlow) for a command that trains or loads a model.

    Only those commands pay for it: ``--help``, argument and config errors, ``archguide score``
    and ``archguide report`` never import TensorFlow. Its C++ start-up lines (absl, oneDNN, CPU
    features), written straight to the error stream while it loads, are held back unless ``-v``.
    """
    import os

    from archguide._backend import import_keras

    if "keras" in sys.modules or _VERBOSE:
        import_keras()
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import_keras()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="archguide", description="Keras networks for tabular data whose shape follows feature importance."
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def options(p: argparse.ArgumentParser, example: str, verbose: str) -> None:
        p.add_argument("--config", metavar="FILE", help="YAML file of options (see configs/)")
        p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help=f"override one option, e.g. {example} (repeatable)")  # fmt: skip
        p.add_argument("-v", "--verbose", action="store_true", help=verbose)

    demo = sub.add_parser(
        "demo",
        help="the main job on a built-in data set (no download): scores, plan, training with re-scoring, "
        "a comparison with a plain MLP, and a report",
    )
    demo.add_argument("--out", default=DEMO_DIR, metavar="DIR",
                      help=f"run directory (default ./{DEMO_DIR}; a previous demo there is replaced)")  # fmt: skip
    options(demo, "training.epochs=50", "one line per epoch; tracebacks of errors")

    score = sub.add_parser("score", help="score the features of a data file and print the table")
    score.add_argument("data", help="CSV or Parquet file with a header row")
    score.add_argument("--target", help="name of the target column (or data.target in the config)")
    score.add_argument("--plot", metavar="FILE", help="also save a bar chart of the scores (.png, .pdf, .svg, ...)")
    score.add_argument("--out", metavar="JSON", help="also save the scores as JSON")
    options(score, "scoring.n_repeats=10", "say what is decided, show progress")

    fit = sub.add_parser(
        "fit", help="score, plan and train on a data file; write the model, scores, plan, history and a report"
    )
    fit.add_argument(
        "data",
        help="CSV or Parquet file with the features and the target, or a directory of Parquet files (streamed: "
        "never read whole)",
    )
    fit.add_argument("--target", help="name of the target column (or data.target in the config)")
    fit.add_argument("--out", required=True, metavar="DIR", help="run directory to write (see archguide.report)")
    fit.add_argument("--overwrite", action="store_true", help="replace DIR if it exists and is not empty")
    options(fit, "training.epochs=50", "one line per epoch; tracebacks of errors")

    tune = sub.add_parser(
        "tune",
        help="search importance-guided architectures with KerasTuner, refit the best; write a run directory "
        "as fit does, with every trial in tuning.csv",
    )
    tune.add_argument("data", help="CSV or Parquet file with the features and the target")
    tune.add_argument("--target", help="name of the target column (or data.target in the config)")
    tune.add_argument("--max-trials", type=int, metavar="N", help="trials to run (or tuning.max_trials, default 20)")
    tune.add_argument("--out", required=True, metavar="DIR", help="run directory to write (see archguide.report)")
    tune.add_argument("--overwrite", action="store_true", help="replace DIR if it exists and is not empty")
    options(tune, "tuning.cv=5", "KerasTuner's progress and one line per epoch; tracebacks of errors")

    _add_predict(sub)

    report = sub.add_parser("report", help="(re)build report.html and report.md of a run directory")
    report.add_argument("run", metavar="DIR", help="a run directory written by archguide fit")
    report.add_argument("-v", "--verbose", action="store_true", help="show the traceback of an unexpected error")
    return parser


def _add_predict(sub) -> None:
    """The ``predict`` command's arguments."""
    predict = sub.add_parser("predict", help="predict with a saved model.keras (raw columns in, predictions out)")
    predict.add_argument("model", help="a .keras file saved by an archguide estimator")
    predict.add_argument(
        "data",
        help="CSV or Parquet file, or a directory of Parquet files, streamed (the model's columns, any order; extra "
        "ones ignored)",
    )
    predict.add_argument(
        "--out", required=True, metavar="FILE", help="where to write the predictions (.parquet or .pq: Parquet; CSV)"
    )
    predict.add_argument("--sep", default=",", help="CSV field separator of DATA (default ',')")
    predict.add_argument(
        "--id", metavar="COLUMN", help="a column of DATA written beside the predictions (default: the run's data.id)"
    )
    predict.add_argument("-v", "--verbose", action="store_true", help="show the traceback of an unexpected error")


def plot_format(path: str) -> str:
    """The image format a ``--plot`` path asks for, from its extension.

    Raises:
        ConfigError: no extension, or one matplotlib cannot write.
    """
    from matplotlib.backend_bases import FigureCanvasBase

    from archguide.exceptions import ConfigError

    supported = FigureCanvasBase.get_supported_filetypes()
    fmt = Path(path).suffix.lstrip(".").lower()
    if fmt not in supported:
        raise ConfigError(
            f"--plot {path!r}: the format comes from the file extension, expected one of "
            f"{', '.join('.' + f for f in sorted(supported))}. Received: {Path(path).suffix or 'no extension'}"
        )
    return fmt


def demo_data(random_state: int = 0):
    """The demo table: diabetes (shipped with scikit-learn) plus known extras.

    Returns:
        ``(X, y, description)``: X has the ten diabetes features, ``bmi_copy``
        (``bmi`` plus 5% noise) and ``noise_0`` .. ``noise_2`` (pure noise).
    """
    import numpy as np
    from sklearn.datasets import load_diabetes

    data = load_diabetes(as_frame=True)
    X = data.data.copy()
    rng = np.random.default_rng(random_state)
    X["bmi_copy"] = X["bmi"] + 0.05 * X["bmi"].std() * rng.standard_normal(len(X))
    for i in range(3):
        X[f"noise_{i}"] = rng.standard_normal(len(X)) * X["bmi"].std()
    description = (
        f"diabetes progression ({len(X)} rows): 10 clinical features, plus bmi_copy (a near-copy of bmi) "
        "and noise_0..noise_2 (pure noise)"
    )
    return X, data.target, description


PARQUET_SUFFIXES = (".parquet", ".pq")
DEMO_DIR = "archguide-demo"


def _warn(message: str) -> None:
    print(f"archguide: warning: {message}", file=sys.stderr)


def _is_row_index(column) -> bool:
    """Whether a leading unnamed column is a row index written with the table (pandas' ``to_csv`` default)."""
    from pandas.api import types as ptypes

    values = column.dropna()
    return len(values) == len(column) and ptypes.is_integer_dtype(column.dtype) and values.is_unique


def _read_table(path: str, sep: str, *, drop: Sequence[str] = ()):
    """A DataFrame from a CSV file, or a Parquet file (by its extension, ``.parquet`` or ``.pq``).

    Every command reads its data here, so a table is refused or fixed up the same way
    everywhere: a file without rows or with a repeated column name is a DataError; a leading
    unnamed column of unique integers (a row index, as ``DataFrame.to_csv`` writes by default) is
    left out with a one-line warning; the columns in ``drop`` (``data.drop``) are left out.
    """
    import pandas as pd

    from archguide.exceptions import DataError
    from archguide.schema import format_names, repeated

    if not Path(path).exists():
        raise DataError(f"Data file {path!r} does not exist.")
    if Path(path).suffix.lower() in PARQUET_SUFFIXES:
        try:
            frame = pd.read_parquet(path)
        except ImportError as exc:
            raise DataError(
                f"Reading {path!r} needs a Parquet engine: pip install 'archguide[parquet]' (pyarrow)."
            ) from exc
        except (OSError, ValueError) as exc:
            raise DataError(f"Could not read {path!r} as Parquet: {exc}") from exc
        header = [str(c) for c in frame.columns]
    else:
        try:
            # The header as written: pandas renames a repeated name ('speed' -> 'speed.1') when it reads a table.
            header = pd.read_csv(path, sep=sep, header=None, nrows=1, dtype=str, keep_default_na=False)
            header = [str(c) for c in header.iloc[0]] if len(header) else []
            frame = pd.read_csv(path, sep=sep)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, IsADirectoryError) as exc:
            raise DataError(f"Could not read {path!r} as CSV (sep={sep!r}): {exc}") from exc
    dupes = repeated(name for name in header if name)
    if dupes:
        raise DataError(
            f"Data file {path!r} repeats the column name{'s' if len(dupes) > 1 else ''} {format_names(dupes)} in its "
            "header; column names must be unique."
        )
    if len(frame) == 0:
        raise DataError(f"Data file {path!r} has no rows: only a header with {len(frame.columns)} column names.")
    first = frame.columns[0]
    if header and header[0] == "" and str(first).startswith("Unnamed: 0") and _is_row_index(frame[first]):
        _warn(
            f"the first column of {path!r} has no name and numbers the rows (a row index written with the table); "
            "it is left out. Write the table with index=False, or name the column to keep it."
        )
        frame = frame.drop(columns=[first])
    if drop:
        _check_columns(frame, drop, "data.drop", path)
        frame = frame.drop(columns=list(drop))
    return frame


def _check_columns(frame, names: Sequence[str], key: str, path: str) -> None:
    """Raise DataError for names in ``names`` that are not columns of ``frame`` (with the nearest one)."""
    from archguide.exceptions import DataError
    from archguide.schema import format_names

    columns = [str(c) for c in frame.columns]
    for name in names:
        if name not in columns:
            raise DataError(
                f"{key} names {name!r}, which is not a column of {path!r}.{_nearest_hint(name, columns)} "
                f"Columns: {format_names(columns, limit=10)}."
            )


def _nearest_hint(name: str, columns: Sequence[str]) -> str:
    """`` Did you mean 'x'?`` for the column nearest ``name`` (a difference of case only is near too), or ``""``."""
    nearest = difflib.get_close_matches(name, columns, n=1, cutoff=0.6)
    if not nearest:
        nearest = [c for c in columns if c.lower() == name.lower()][:1]
    return f" Did you mean {nearest[0]!r}?" if nearest else ""


def _split_target(frame, target: str | None, id_column: str | None = None):
    import numpy as np

    from archguide.exceptions import ConfigError, DataError
    from archguide.schema import format_names

    if not target:
        raise ConfigError("No target column given: pass --target NAME (or set data.target in the config).")
    if target not in frame.columns:
        columns = [str(c) for c in frame.columns]
        raise DataError(
            f"Target column {target!r} is not in the data.{_nearest_hint(target, columns)} "
            f"Columns: {format_names(columns, limit=10)}."
        )
    y = frame[target]
    n_missing = int(y.isna().sum())
    if n_missing:
        rows = [str(i) for i in np.flatnonzero(y.isna().to_numpy())[:5] + 2]  # + the header line, from 1
        raise DataError(
            f"Target column {target!r} has {n_missing} missing value{'s' if n_missing > 1 else ''} (file line"
            f"{'s' if n_missing > 1 else ''} {', '.join(rows)}{', ...' if n_missing > 5 else ''}): remove those rows."
        )
    if id_column:  # a row key: never a feature
        if id_column == target:
            raise ConfigError(f"data.id {id_column!r} is also the target; name another column.")
        _check_columns(frame, [id_column], "data.id", "the data")
        return frame.drop(columns=[target, id_column]), y
    return frame.drop(columns=[target]), y


def _run_scoring(X, y, config, args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from archguide.scoring.score import score_features

    fmt = plot_format(args.plot) if args.plot else None  # refuse a bad extension before any work
    scores = score_features(X, y, verbose=int(args.verbose), **config["scoring"])
    frame = scores.to_frame()[["importance", "std", "group", "weak"]]
    print(frame.to_string(float_format=lambda v: f"{v:.4f}"))
    n_weak = int(scores.weak.sum())
    print(
        f"\ntask: {scores.task}; score: held-out {scores.metric} (baseline {scores.baseline_score:.3f}); "
        f"{len(scores.groups)} groups; {n_weak} weak (false discovery rate {scores.noise_alpha:g})"
    )
    outputs = []
    if args.out:
        text = json.dumps(scores.to_dict(), indent=2)
        outputs.append((args.out, lambda p: p.write_text(text, encoding="utf-8")))
    if args.plot:
        ax = scores.plot()
        outputs.append((args.plot, lambda p: ax.figure.savefig(p, dpi=120, format=fmt)))
    write_files(outputs)  # all or nothing: a failed plot leaves an existing scores file as it was
    for path, what in ((args.out, "scores"), (args.plot, "plot")):
        if path:
            print(f"{what} written to {path}")
    return 0


def _check_score_outputs(args) -> None:
    """Every output path of ``archguide score``, checked before any work."""
    from archguide._files import check_output_file
    from archguide.exceptions import ConfigError

    inputs = [("input data file", args.data), ("config file", args.config)]
    if args.out and args.plot and Path(args.out).absolute() == Path(args.plot).absolute():
        raise ConfigError(f"--out and --plot are both {args.out!r}; give them different paths.")
    for option, path in (("--out", args.out), ("--plot", args.plot)):
        if path:
            check_output_file(path, option, inputs=inputs)


def _run_predict(args) -> int:
    import pandas as pd

    from archguide._files import check_output_file
    from archguide.exceptions import DataError

    model_path = Path(args.model)
    run = model_path.parent if (model_path.parent / "run.json").exists() else None
    inputs = [("input data file", args.data), ("model file", args.model)]
    check_output_file(args.out, "--out", inputs=inputs, protected=[run] if run is not None else [])
    if not model_path.exists():
        raise DataError(f"Model file {args.model!r} does not exist.")
    if Path(args.data).is_dir():
        return _run_predict_streamed(args, run)
    frame = _read_table(args.data, args.sep)
    id_column, explicit = args.id, args.id is not None
    if id_column is None and run is not None:  # the run's data.id, when the model sits in its run directory
        id_column = _run_id_column(run)
    if id_column and id_column not in frame.columns:
        if explicit:
            _check_columns(frame, [id_column], "--id", args.data)
        _warn(f"the run's id column {id_column!r} is not in {args.data!r}; predictions are written without it")
        id_column = None
    _import_keras()
    from archguide.estimators import load

    model = load(args.model)
    names = getattr(model, "feature_names_in_", None)
    if names is not None:  # a file often also holds the target or an id: read the model's columns only
        features = frame[[c for c in frame.columns if c in set(names)]]
    else:
        features = frame.drop(columns=[id_column]) if id_column else frame
    out = pd.DataFrame({"prediction": model.predict(features)})
    if hasattr(model, "predict_proba"):
        proba = pd.DataFrame(model.predict_proba(features), columns=[f"proba_{c}" for c in model.classes_])
        out = pd.concat([out, proba], axis=1)
    if id_column:
        out.insert(0, id_column, frame[id_column].to_numpy())
    if Path(args.out).suffix.lower() in PARQUET_SUFFIXES:
        write_files([(args.out, lambda p: out.to_parquet(p, index=False))])
    else:
        write_files([(args.out, lambda p: out.to_csv(p, index=False))])
    print(f"{len(out)} predictions written to {args.out}")
    return 0


def _run_predict_streamed(args, run) -> int:
    """``archguide predict model.keras data_dir/``: predicted and written batch by batch (Parquet or CSV)."""
    from archguide.datasets import open_dataset
    from archguide.exceptions import DataError

    id_column = args.id
    if id_column is None and run is not None:
        id_column = _run_id_column(run)
        if id_column:
            try:
                open_dataset(args.data, columns=[id_column])
            except DataError:
                _warn(f"the run's id column {id_column!r} is not in {args.data!r}; predictions are written without it")
                id_column = None
    _import_keras()
    from archguide.estimators import load, write_predictions

    n = write_predictions(load(args.model), args.data, args.out, id_column=id_column)
    print(f"{n} predictions written to {args.out}")
    return 0


def _run_id_column(run: Path) -> str | None:
    """``data.id`` of a run directory's ``config.yaml`` (None when it has none)."""
    import yaml

    try:
        config = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
        return (config.get("data") or {}).get("id")
    except (OSError, yaml.YAMLError, AttributeError):
        return None


def _estimator_for(config, y):
    """The estimator a configuration asks for: the task from ``scoring.task`` (``auto``: from y)."""
    from archguide.config import SCHEMA, estimator_params
    from archguide.exceptions import ConfigError
    from archguide.schema import check_target
    from archguide.scoring.score import resolve_task

    ignored = [
        key
        for key, (default, _) in SCHEMA["scoring"].items()
        if key not in ("task", "groups", "n_repeats") and config["scoring"][key] != default
    ]
    if ignored:
        raise ConfigError(
            f"fit takes scoring.task, scoring.groups and scoring.n_repeats; scoring.{ignored[0]} is an option of "
            "archguide score only (the estimators choose the rest; training.random_state seeds the whole fit)."
        )
    values = check_target(y, len(y))
    task = resolve_task(config["scoring"]["task"], values)
    _import_keras()
    from archguide.estimators import ImportanceGuidedClassifier, ImportanceGuidedRegressor

    cls = ImportanceGuidedRegressor if task == "regression" else ImportanceGuidedClassifier
    return cls(**estimator_params(config))


def _run_fit(args, config, *, tune: bool = False) -> int:
    import time

    from archguide.report import check_run_directory

    role = _tuning_role(args, config) if tune else None  # fit ignores the tuning section
    if role in (None, "chief"):  # a distributed search's workers write nothing
        inputs = [("input data file", args.data), ("config file", args.config)]
        check_run_directory(args.out, overwrite=args.overwrite, inputs=inputs)  # before the work, not after
    if Path(args.data).is_dir():
        return _run_fit_streamed(args, config, tune)
    data = config["data"]
    frame = _read_table(args.data, data["sep"], drop=data["drop"] or ())
    target = args.target or data["target"]
    X, y = _split_target(frame, target, data["id"])
    estimator = _estimator_for(config, y)
    command = "tune" if tune else "fit"
    print(f"archguide {command}: {type(estimator).__name__} on {len(X)} rows x {X.shape[1]} columns of {args.data}")
    start = time.perf_counter()
    if tune:
        tuning = config["tuning"]
        print(f"searching: {tuning['max_trials']} trials ({tuning['tuner']}), then the best is refitted on all rows")
        estimator.set_params(verbose=1 if args.verbose else 0)
        if role is not None:
            from archguide._distributed import oracle_address

            print(f"distributed search: this process is {role!r} (chief at {oracle_address()})")
        estimator = estimator.tune(
            X, y, max_trials=tuning["max_trials"], tuner=tuning["tuner"], cv=tuning["cv"],
            search_space=tuning["search_space"],
        )  # fmt: skip
        if estimator is None:
            print(f"worker {role}: done in {time.perf_counter() - start:.1f} s; the chief writes the run")
            return 0
    else:
        estimator.set_params(verbose=2 if args.verbose else 1)
        estimator.fit(X, y)
    seconds = time.perf_counter() - start
    estimator.set_params(verbose=0)
    config = {**config, "data": {**config["data"], "target": target}}
    if tune:  # the run's config is the one that refits it: the best trial's values
        from archguide.config import with_estimator_params

        config = with_estimator_params(config, estimator.get_params())
    return _save_fitted(estimator, args, config, seconds, tune, X=X, y=y)


def _save_fitted(estimator, args, config, seconds: float, tune: bool, *, X, y) -> int:
    """Write the run directory of a fitted estimator and print what was fitted (X and y None: streamed)."""
    from archguide.report import save_run

    target = config["data"]["target"]
    save_run(
        estimator, args.out, X=X, y=y, config=config, data_path=args.data, target=target, fit_seconds=seconds,
        overwrite=args.overwrite,
    )  # fmt: skip
    _print_fitted(estimator, Path(args.out), seconds, tune)
    return 0


def _streamed_source(path: str, config, target: str | None):
    """The dataset in a directory, opened for ``fit``: the features are every column but the target and
    ``data.drop`` and ``data.id`` (as the first file's schema lists them)."""
    import pandas as pd
    import pyarrow.dataset as ds

    from archguide.datasets import open_dataset, parquet_files

    data = config["data"]
    if not target:
        from archguide.exceptions import ConfigError

        raise ConfigError("No target column given: pass --target NAME (or set data.target in the config).")
    file = parquet_files(path, "data")[0][0]
    try:
        names = [str(n) for n in ds.dataset(file, format="parquet").schema.names]
    except (OSError, ValueError) as exc:
        from archguide.exceptions import DataError

        raise DataError(f"Could not read {file!r} as Parquet: {exc}") from None
    header = pd.DataFrame(columns=names)  # the column names alone, for the check every command uses
    named = {"--target": [target], "data.drop": list(data["drop"] or ()), "data.id": [data["id"]] if data["id"] else []}
    for key, given in named.items():
        _check_columns(header, given, key, file)
    left_out = [n for given in named.values() for n in given]
    return open_dataset(path, target=target, columns=[n for n in names if n not in left_out])


def _run_fit_streamed(args, config, tune: bool) -> int:
    """``archguide fit data_dir/``: the dataset in the directory is streamed (never read whole)."""
    import time

    from archguide.config import estimator_params
    from archguide.exceptions import ConfigError
    from archguide.scoring.score import resolve_task

    if tune:
        raise ConfigError(
            f"tune takes a data file: {args.data!r} is a directory (a dataset that is streamed, which only fit "
            "takes). Tune on a file that holds a sample of it, then fit the best config.yaml on the directory."
        )
    target = args.target or config["data"]["target"]
    source = _streamed_source(args.data, config, target)
    _, head = next(source.batches(source.pieces[0], [target]))
    task = resolve_task(config["scoring"]["task"], head[target].to_numpy())  # auto: from the first rows
    _import_keras()
    from archguide.estimators import ImportanceGuidedClassifier, ImportanceGuidedRegressor

    cls = ImportanceGuidedRegressor if task == "regression" else ImportanceGuidedClassifier
    estimator = cls(**estimator_params(config))
    print(
        f"archguide fit: {cls.__name__} on {source.n_rows:,} rows x {len(source.names)} columns of {args.data} "
        f"({len(source.pieces)} row groups, streamed)"
    )
    start = time.perf_counter()
    estimator.set_params(verbose=2 if args.verbose else 1)
    estimator.fit(source)
    seconds = time.perf_counter() - start
    estimator.set_params(verbose=0)
    config = {**config, "data": {**config["data"], "target": target}}
    return _save_fitted(estimator, args, config, seconds, tune, X=None, y=None)


def _tuning_role(args, config) -> str | None:
    """Apply ``--max-trials``; the process's role in a distributed search (None: not distributed).

    A tuned run's config.yaml refits with ``fit``, which ignores the tuning section.
    """
    from archguide._distributed import distributed_role
    from archguide.exceptions import ConfigError

    if args.max_trials is not None:
        config["tuning"]["max_trials"] = args.max_trials
    if config["tuning"]["max_trials"] < 1:
        raise ConfigError(f"--max-trials must be a positive integer. Received: {config['tuning']['max_trials']}")
    return distributed_role()


def _print_fitted(estimator, out: Path, seconds: float, tune: bool) -> None:
    """What ``fit`` and ``tune`` print once the run is written."""
    import json

    from archguide.report import validation_metrics

    info = json.loads((out / "run.json").read_text(encoding="utf-8"))
    weak = [g for g, members in estimator.scores_.groups.items() if all(estimator.scores_.weak[f] for f in members)]
    metrics = ", ".join(f"{k} {v:.4g}" for k, v in validation_metrics(info["metrics"]).items())
    if tune:
        results = estimator.tuning_results_
        done = int((results["status"] == "COMPLETED").sum())
        print(f"{done} of {len(results)} trials completed; best score {results['score'].iloc[0]:.4g}")
    print(
        f"{'tuned and fitted' if tune else 'fitted'} in {seconds:.1f} s: {len(estimator.plan_.branches)} branches, "
        f"{info['n_params']} parameters, {len(weak)} of {len(estimator.scores_.groups)} column groups weak; epoch "
        f"{estimator.best_epoch_} of {estimator.n_epochs_} kept; validation {metrics}"
        + (" (first network: the saved one was refitted on every row, these included)" if info.get("refit") else "")
    )
    print(f"run written to {out} (open {out / 'report.html'})")


def _run_demo(args, config) -> int:
    """The main job on the diabetes table with known extras, against a plain MLP on the same split."""
    import time

    from sklearn.model_selection import train_test_split

    from archguide.estimators._baseline import plain_mlp
    from archguide.report import check_run_directory, save_run

    out = Path(args.out)
    overwrite = (out / "run.json").exists()  # a previous demo's run is replaced; anything else is refused
    hint = "archguide demo replaces only a previous demo's directory: choose another --out."
    check_run_directory(out, overwrite=overwrite, inputs=[("config file", args.config)], replace_hint=hint)
    if config["training"]["random_state"] is None:
        config["training"]["random_state"] = 0  # the demo gives the same figures every run
    seed = config["training"]["random_state"]
    X, y, description = demo_data()
    print(f"archguide demo: {description}.")
    print("Known truth: noise_0..noise_2 carry nothing; bmi_copy duplicates bmi. 20% of rows are kept for testing.\n")
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=seed)

    estimator = _estimator_for(config, y_train)
    estimator.set_params(verbose=2 if args.verbose else 1)
    print("1/2 archguide: score the features, plan the network, train it while re-scoring")
    start = time.perf_counter()
    estimator.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    estimator.set_params(verbose=0)
    print("2/2 a plain Keras MLP (64-32, Adam, early stopping on a validation share) on the same rows")
    start = time.perf_counter()
    mlp = plain_mlp(X_train, y_train, config["training"], seed=seed, verbose=2 if args.verbose else 1)
    mlp_seconds = time.perf_counter() - start

    scores = estimator.scores_
    _print_scores_and_plan(estimator)
    rows = {
        name: _test_row(model, X_test, y_test, fit_seconds, n_params)
        for name, model, fit_seconds, n_params in (
            ("archguide", estimator, seconds, _trainable(estimator.network_)),
            ("plain MLP 64-32", mlp, mlp_seconds, _trainable(mlp.model_)),
        )
    }
    print(f"\nTest rows ({len(X_test)}):")
    print(f"  {'':18}{'MSE':>10}{'R2':>8}{'parameters':>12}{'seconds':>9}")
    for name, row in rows.items():
        print(f"  {name:18}{row['mse']:10.1f}{row['r2']:8.3f}{row['parameters']:12d}{row['seconds']:9.1f}")
    weak = [f"noise_{i}" for i in range(3) if scores.weak[f"noise_{i}"]]
    together = scores.group_of["bmi"] == scores.group_of["bmi_copy"]
    print(
        f"\nKnown truth: {len(weak)} of 3 noise columns flagged weak; bmi and bmi_copy "
        f"{'scored as one group' if together else 'scored apart'}."
    )
    metrics = {f"test, {name}": {"mse": row["mse"], "r2": row["r2"]} for name, row in rows.items()}
    save_run(
        estimator, out, X=X_train, y=y_train, config=config, target="disease progression", fit_seconds=seconds,
        data_path="diabetes (scikit-learn) + bmi_copy + noise_0..noise_2", overwrite=overwrite, metrics=metrics,
    )  # fmt: skip
    print(f"Report: {out / 'report.html'} (and report.md)")
    return 0


def _print_scores_and_plan(estimator) -> None:
    frame = estimator.scores_.to_frame()[["importance", "std", "group", "weak"]]
    print("\nFeature scores (forest proxy, held-out rows):")
    print(frame.to_string(float_format=lambda v: f"{v:.4f}"))
    print("\nPlan:")
    for branch in estimator.plan_.branches:
        strengths = sorted({f"{estimator.plan_.l1_strengths[f]:.3g}" for f in branch.features}, key=float)
        l1 = strengths[0] if len(strengths) == 1 else f"{strengths[0]}..{strengths[-1]}"
        units = " -> ".join(map(str, branch.units))
        print(f"  {branch.name}: {units} units, L1 {l1}: {', '.join(branch.features)}")
    print(f"  head: {' -> '.join(map(str, estimator.plan_.head_units))} units")


def _test_row(model, X_test, y_test, fit_seconds: float, n_params: int) -> dict:
    from sklearn.metrics import mean_squared_error, r2_score

    predicted = model.predict(X_test)
    return {
        "mse": float(mean_squared_error(y_test, predicted)),
        "r2": float(r2_score(y_test, predicted)),
        "parameters": n_params,
        "seconds": fit_seconds,
    }


def _trainable(model) -> int:
    import numpy as np

    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def _run_report(args) -> int:
    from archguide.report import write_report

    paths = write_report(args.run)
    print(f"report written to {paths[0]} and {paths[1]}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    global _VERBOSE
    _VERBOSE = bool(getattr(args, "verbose", False))
    if args.version:
        from archguide import __version__

        print(f"archguide {__version__}")
        return 0
    if args.command is None:
        parser.print_help()
        return 2

    from archguide.config import load_config
    from archguide.exceptions import ArchguideError

    try:
        if args.command == "predict":
            return _run_predict(args)
        if args.command == "report":
            return _run_report(args)
        config = load_config(args.config, args.overrides)
        if args.command in ("fit", "tune"):
            return _run_fit(args, config, tune=args.command == "tune")
        if args.command == "demo":
            return _run_demo(args, config)
        _check_score_outputs(args)
        data = config["data"]
        frame = _read_table(args.data, data["sep"], drop=data["drop"] or ())
        X, y = _split_target(frame, args.target or data["target"], data["id"])
        return _run_scoring(X, y, config, args)
    except (ArchguideError, OSError) as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        print("archguide: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.verbose:
            raise
        _fail(f"unexpected {type(exc).__name__}: {exc} (run with -v for the traceback)")
    return 1


def _fail(message: str) -> None:
    """Print one line: a multi-line message (a YAML parser's, say) is folded into it."""
    print(f"archguide: error: {' '.join(message.split())}", file=sys.stderr)
