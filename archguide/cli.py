"""The ``archguide`` command line (also ``python -m archguide``).

Commands:

- ``archguide demo``: score a built-in data set (scikit-learn's diabetes
  table, with a near-copy of one feature and three noise columns added, so
  that the grouping and the noise test have something to find) and print the
  table. Nothing is downloaded.
- ``archguide score data.csv --target y``: score the features of a CSV file.
- ``archguide predict model.keras data.csv --out preds.csv``: predictions of a
  saved estimator, from the model's columns in any order (other columns, such
  as the target or an id, are ignored; a missing one is an error). For a
  classifier: the predicted label and one probability column per class,
  ``proba_<class>``.

Options come from a YAML file (``--config configs/default.yaml``) and dotted
overrides (``--set scoring.n_repeats=10``). Every error prints one line and
exits with status 1 (2 for a malformed command line; ``-v`` shows the
traceback of an unexpected one). Output files are written all or nothing:
every file goes to a temporary place first and all are moved into place only
when all succeeded; a replaced file keeps its mode, a new one gets the
umask's. The plot's format comes from its extension (``.png``, ``.pdf``,
``.svg``, ...).
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


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="archguide", description="Keras networks for tabular data whose shape follows feature importance."
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", metavar="FILE", help="YAML file of options (see configs/)")
        p.add_argument(
            "--set",
            dest="overrides",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override one option, e.g. scoring.n_repeats=10 (repeatable)",
        )
        p.add_argument("--plot", metavar="FILE", help="also save a bar chart of the scores (.png, .pdf, .svg, ...)")
        p.add_argument("--out", metavar="JSON", help="also save the scores as JSON")
        p.add_argument("-v", "--verbose", action="store_true", help="say what is decided, show progress")

    predict = sub.add_parser("predict", help="predict with a saved model.keras (raw columns in, predictions out)")
    predict.add_argument("model", help="a .keras file saved by an archguide estimator")
    predict.add_argument("data", help="CSV file with a header row (the model's columns, any order; extra ones ignored)")
    predict.add_argument("--out", required=True, metavar="CSV", help="where to write the predictions")
    predict.add_argument("--sep", default=",", help="CSV field separator of DATA (default ',')")
    predict.add_argument("-v", "--verbose", action="store_true", help="show the traceback of an unexpected error")

    demo = sub.add_parser("demo", help="score a built-in data set and print the table (no download)")
    common(demo)
    score = sub.add_parser("score", help="score the features of a CSV file")
    score.add_argument("data", help="CSV file with a header row")
    score.add_argument("--target", help="name of the target column (or data.target in the config)")
    common(score)
    return parser


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


def _read_table(path: str, sep: str):
    import pandas as pd

    from archguide.exceptions import DataError

    try:
        return pd.read_csv(path, sep=sep)
    except FileNotFoundError as exc:
        raise DataError(f"Data file {path!r} does not exist.") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, IsADirectoryError) as exc:
        raise DataError(f"Could not read {path!r} as CSV (sep={sep!r}): {exc}") from exc


def _split_target(frame, target: str | None):
    from archguide.exceptions import ConfigError, DataError
    from archguide.schema import format_names

    if not target:
        raise ConfigError("No target column given: pass --target NAME (or set data.target in the config).")
    if target not in frame.columns:
        columns = [str(c) for c in frame.columns]
        nearest = difflib.get_close_matches(target, columns, n=1, cutoff=0.6)
        if not nearest:  # a difference of case only is near too
            nearest = [c for c in columns if c.lower() == target.lower()][:1]
        hint = f" Did you mean {nearest[0]!r}?" if nearest else ""
        raise DataError(
            f"Target column {target!r} is not in the data.{hint} Columns: {format_names(columns, limit=10)}."
        )
    return frame.drop(columns=[target]), frame[target]


def _run_scoring(X, y, config, args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from archguide.scoring import score_features

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


def _run_predict(args) -> int:
    import pandas as pd

    from archguide.estimators import load

    try:
        model = load(args.model)
    except FileNotFoundError as exc:
        from archguide.exceptions import DataError

        raise DataError(f"Model file {args.model!r} does not exist.") from exc
    frame = _read_table(args.data, args.sep)
    names = getattr(model, "feature_names_in_", None)
    if names is not None:  # a file often also holds the target or an id: read the model's columns only
        frame = frame[[c for c in frame.columns if c in set(names)]]
    out = pd.DataFrame({"prediction": model.predict(frame)})
    if hasattr(model, "predict_proba"):
        proba = pd.DataFrame(model.predict_proba(frame), columns=[f"proba_{c}" for c in model.classes_])
        out = pd.concat([out, proba], axis=1)
    write_files([(args.out, lambda p: out.to_csv(p, index=False))])
    print(f"{len(out)} predictions written to {args.out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
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
        config = load_config(args.config, args.overrides)
        if args.command == "demo":
            if config["scoring"]["random_state"] is None:
                config["scoring"]["random_state"] = 0  # the demo prints the same table every run
            X, y, description = demo_data()
            print(f"archguide demo: scoring the features of {description}.\n")
        else:
            frame = _read_table(args.data, config["data"]["sep"])
            X, y = _split_target(frame, args.target or config["data"]["target"])
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
