"""Run directories and their reports: one self-contained HTML page and a Markdown variant. No Keras.

A *run directory* is what ``archguide fit`` writes (and :func:`save_run` from Python)::

    model.keras        the fitted estimator (raw columns in; archguide.load reads it)
    config.yaml        the resolved configuration (every key, defaults included)
    run.json           data summary, metrics, timings, versions
    scores.json        the forest proxy's feature scores (FeatureScores.to_dict)
    plan.yaml          the architecture plan (ArchitecturePlan.to_dict)
    history.csv        one row per epoch: losses and metrics
    rescoring.csv      one row per re-scoring: the network's smoothed importance per feature
    strengths.csv      one row per re-scoring: the L1 strength per feature after it
    sensitivity.csv    per column: network importance on held-out and training rows, flagged
    plans.json         with ``replan``: every plan trained (epoch, reason, features moved, plan)
    tuning.csv         after ``archguide tune``: one row per trial (the values tried, score, status)
    report.html        everything above for people: one file, images embedded
    report.md          the same in Markdown, images in figures/
    figures/           scores.png, plan.png, history.png

:func:`write_report` (re)builds the last three from the others, so ``archguide report DIR``
needs neither the data nor Keras. The plots are :mod:`archguide.plotting`'s.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from archguide._files import write_files
from archguide.exceptions import ConfigError, DataError
from archguide.planning import ArchitecturePlan
from archguide.plotting import plot_history, plot_plan, plot_scores
from archguide.scoring.feature_scores import FeatureScores

__all__ = ["Run", "check_run_directory", "load_run", "plot_scores", "save_run", "write_report"]

#: Files every run directory has (the report is rebuilt from these).
REQUIRED_FILES = ("run.json", "scores.json", "plan.yaml", "history.csv")
FIGURES = ("scores", "plan", "history")


@dataclass
class Run:
    """What a run directory holds, read back (see the module docstring)."""

    directory: Path
    info: dict[str, Any]
    config: dict[str, Any] | None
    scores: FeatureScores
    plan: ArchitecturePlan
    history: pd.DataFrame
    rescoring: pd.DataFrame
    strengths: pd.DataFrame
    sensitivity: pd.DataFrame
    tuning: pd.DataFrame | None = None
    plans: list[dict[str, Any]] | None = None


# ---------------------------------------------------------------------- writing a run


def check_run_directory(
    directory: str | Path,
    *,
    overwrite: bool = False,
    inputs: Sequence[tuple[str, str | Path | None]] = (),
    replace_hint: str = "Pass --overwrite to replace it, or choose another directory.",
) -> Path:
    """Refuse an output directory that would lose files or cannot be written: call before a long fit.

    A missing or empty directory is fine; one with files needs ``overwrite``. A directory that
    holds one of ``inputs`` (the data being read, the config) or the current working directory is
    never replaced, even with ``overwrite``. The folder it goes in must be writable.

    Args:
        directory: The run directory.
        overwrite: Replace a non-empty directory.
        inputs: ``(description, path)`` of the files the command reads.
        replace_hint: What the user can do about a non-empty directory (a command without
            ``--overwrite`` says something else).

    Raises:
        ConfigError: the path is a file, a non-empty directory without ``overwrite``, a directory
            that holds an input or the working directory, or its folder cannot be written.
    """
    from archguide._files import check_writable, inside

    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"--out {str(directory)!r} is a file; expected a directory for the run.")
    if inside(Path.cwd(), directory):
        raise ConfigError(
            f"--out {str(directory)!r} is the current directory (or holds it); a run directory is replaced whole. "
            "Choose a new directory, for example runs/a."
        )
    for description, path in inputs:
        if path is not None and inside(path, directory):
            raise ConfigError(
                f"--out {str(directory)!r} holds the {description} {str(path)!r}; writing the run there would delete "
                "it. Choose another directory."
            )
    if directory.is_dir() and any(directory.iterdir()) and not overwrite:
        raise ConfigError(f"--out {str(directory)!r} exists and is not empty. {replace_hint}")
    check_writable(directory, "--out")
    return directory


def _data_summary(X: pd.DataFrame, y, estimator) -> dict[str, Any]:
    kinds = estimator.encoding_.kinds
    y = pd.Series(pd.Series(y).to_numpy().ravel() if getattr(y, "ndim", 1) > 1 else pd.Series(y).to_numpy())
    summary: dict[str, Any] = {
        "rows": len(X),
        "columns": len(kinds),
        "kinds": {kind: sum(1 for k in kinds.values() if k == kind) for kind in sorted(set(kinds.values()))},
        "missing": {str(c): int(n) for c, n in X.isna().sum().items() if n > 0},
    }
    if hasattr(estimator, "classes_"):
        counts = y.value_counts()
        summary["target"] = {"classes": {str(c): int(counts.get(c, 0)) for c in estimator.classes_}}
    else:
        values = pd.to_numeric(y)
        summary["target"] = {
            "mean": float(values.mean()),
            "std": float(values.std(ddof=0)),
            "min": float(values.min()),
            "max": float(values.max()),
        }
    return summary


def _task(estimator) -> str:
    if hasattr(estimator, "classes_"):
        return "binary" if len(estimator.classes_) == 2 else "multiclass"
    return "regression"


#: The metrics' row names with ``refit``: the validation rows describe the first network only.
REFIT_VALIDATION = "validation (first network; the saved one trained on these rows)"
REFIT_TRAINING = "training (saved model, every row, last epoch)"


def validation_metrics(metrics: Mapping[str, Mapping[str, float]]) -> Mapping[str, float]:
    """The validation row of a run's metrics (named differently after a refit)."""
    return metrics.get("validation") or metrics.get(REFIT_VALIDATION) or {}


def _metrics(estimator) -> dict[str, dict[str, float]]:
    """Training and validation metrics, in the target's units.

    At the best epoch; with ``refit``, the validation rows were trained on by the saved model, so
    the validation row describes the first network (the one early stopping chose the epoch count
    with) and the training row is the saved model's last epoch on every row. ``r2`` is
    ``1 - MSE / Var(y)`` with ``y``'s variance over the rows the estimator was fitted on.
    """

    def row(h, i, prefix):
        if hasattr(estimator, "classes_"):
            return {"log_loss": h[prefix + "data_loss"][i], "accuracy": h[prefix + "accuracy"][i]}
        scale, loss = estimator.target_scale_, h[prefix + "data_loss"][i]
        return {"mse": loss * scale**2, "mae": h[prefix + "mae"][i] * scale, "r2": 1.0 - loss}

    h, i = estimator.history_, estimator.best_epoch_ - 1
    refit = getattr(estimator, "refit_history_", None)
    if refit:
        return {REFIT_VALIDATION: row(h, i, "val_"), REFIT_TRAINING: row(refit, -1, "")}
    return {"validation": row(h, i, "val_"), "training": row(h, i, "")}


def save_run(
    estimator,
    directory: str | Path,
    *,
    X,
    y,
    config: Mapping[str, Any] | None = None,
    data_path: str | None = None,
    target: str | None = None,
    fit_seconds: float | None = None,
    overwrite: bool = False,
    metrics: Mapping[str, Mapping[str, float]] | None = None,
) -> Path:
    """Write a fitted estimator's run directory, report included, all or nothing.

    Everything is written to a temporary directory beside ``directory`` and moved into place at
    the end; if anything fails, ``directory`` is left as it was.

    Args:
        estimator: A fitted ImportanceGuidedRegressor or ImportanceGuidedClassifier.
        directory: Where the run goes.
        X, y: The data it was fitted on (for the data summary). With a streamed fit (a
            dataset: Parquet files, a dask DataFrame) pass None for both: the summary is the one
            the fit's pass over the data gathered.
        config: The resolved configuration (written as ``config.yaml``).
        data_path, target: Named in the report.
        fit_seconds: How long the fit took.
        overwrite: Replace a non-empty ``directory``.
        metrics: More rows for the report's metrics table, ``{row: {metric: value}}`` (for
            example test-set figures, or a baseline's).

    Returns:
        The directory.

    Raises:
        ConfigError: as :func:`check_run_directory`; X is None but the estimator was fitted in memory.
    """
    from archguide import __version__

    directory = check_run_directory(directory, overwrite=overwrite)
    if X is None and getattr(estimator, "_data_summary", None) is None:
        raise ConfigError("save_run needs X and y, unless the estimator was fitted on a dataset (streamed).")
    info = {
        "archguide_version": __version__,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "estimator": type(estimator).__name__,
        "task": _task(estimator),
        "data_path": data_path,
        "target": target,
        "data": _data_summary(pd.DataFrame(X), y, estimator) if X is not None else estimator._data_summary,
        "metrics": {**_metrics(estimator), **{k: dict(v) for k, v in (metrics or {}).items()}},
        "n_epochs": estimator.n_epochs_,
        "best_epoch": estimator.best_epoch_,
        "refit": bool(getattr(estimator, "refit_history_", None)),
        "n_params": int(sum(np.prod(w.shape) for w in estimator.network_.trainable_weights)),
        "fit_seconds": fit_seconds,
        "params": {k: v for k, v in estimator.get_params().items() if v is None or isinstance(v, (int, float, str))},
    }
    parent = directory.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=parent, prefix=f".{directory.name}.", suffix=".tmp"))
    try:
        os.chmod(staging, _directory_mode(directory))
        estimator.save(staging / "model.keras")
        (staging / "run.json").write_text(json.dumps(info, indent=2, default=str), encoding="utf-8")
        if config is not None:
            (staging / "config.yaml").write_text(yaml.safe_dump(dict(config), sort_keys=False), encoding="utf-8")
        (staging / "scores.json").write_text(json.dumps(estimator.scores_.to_dict(), indent=2), encoding="utf-8")
        (staging / "plan.yaml").write_text(yaml.safe_dump(estimator.plan_.to_dict(), sort_keys=False), encoding="utf-8")
        history = pd.DataFrame(estimator.history_)
        history.insert(0, "epoch", range(1, len(history) + 1))
        history.to_csv(staging / "history.csv", index=False)
        estimator.rescoring_history_.to_csv(staging / "rescoring.csv", index=False)
        estimator.strengths_history_.to_csv(staging / "strengths.csv", index=False)
        estimator.sensitivity_.to_csv(staging / "sensitivity.csv", index_label="column")
        if getattr(estimator, "tuning_results_", None) is not None:
            estimator.tuning_results_.to_csv(staging / "tuning.csv")
        if len(getattr(estimator, "plans_", [])) > 1:
            plans = [{**r, "plan": r["plan"].to_dict()} for r in estimator.plans_]
            (staging / "plans.json").write_text(json.dumps(plans, indent=2), encoding="utf-8")
        write_report(staging)
        _move_into_place(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


def _directory_mode(directory: Path) -> int:
    """A replaced directory keeps its mode; a new one gets the umask's (not mkdtemp's 0700)."""
    if directory.exists():
        return directory.stat().st_mode & 0o7777
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o777 & ~umask


def _move_into_place(staging: Path, directory: Path) -> None:
    """Replace ``directory`` by ``staging``: the old one is renamed aside first and removed last."""
    if not directory.exists():
        os.rename(staging, directory)
        return
    old = Path(tempfile.mkdtemp(dir=staging.parent, prefix=f".{directory.name}.", suffix=".old"))
    old.rmdir()
    os.rename(directory, old)
    try:
        os.rename(staging, directory)
    except BaseException:
        os.rename(old, directory)
        raise
    shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------------- reading a run


def _csv(path: Path) -> pd.DataFrame:
    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame()
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def load_run(directory: str | Path) -> Run:
    """Read a run directory written by ``archguide fit`` or :func:`save_run`.

    Raises:
        DataError: the directory does not exist, or lacks a file a report needs, or one cannot be read.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"Run directory {str(directory)!r} does not exist.")
    missing = [name for name in REQUIRED_FILES if not (directory / name).exists()]
    if missing:
        raise DataError(
            f"{str(directory)!r} is not an archguide run directory: it has no {', '.join(missing)} "
            "(archguide fit ... --out DIR writes one)."
        )
    try:
        info = json.loads((directory / "run.json").read_text(encoding="utf-8"))
        config_path = directory / "config.yaml"
        config = yaml.safe_load(config_path.read_text(encoding="utf-8")) if config_path.exists() else None
        scores = FeatureScores.from_dict(json.loads((directory / "scores.json").read_text(encoding="utf-8")))
        plan = ArchitecturePlan.from_dict(yaml.safe_load((directory / "plan.yaml").read_text(encoding="utf-8")))
        history = _csv(directory / "history.csv")
        sensitivity = _csv(directory / "sensitivity.csv")
        plans_path = directory / "plans.json"
        plans = json.loads(plans_path.read_text(encoding="utf-8")) if plans_path.exists() else None
    except (ValueError, yaml.YAMLError, KeyError, TypeError, pd.errors.ParserError) as exc:
        raise DataError(f"Could not read run directory {str(directory)!r}: {exc}") from exc
    if "column" in sensitivity:
        sensitivity = sensitivity.set_index("column")
    return Run(
        directory=directory,
        info=info,
        config=config,
        scores=scores,
        plan=plan,
        history=history,
        rescoring=_csv(directory / "rescoring.csv"),
        strengths=_csv(directory / "strengths.csv"),
        sensitivity=sensitivity,
        tuning=_csv(directory / "tuning.csv"),
        plans=plans,
    )


# ---------------------------------------------------------------------- the report


def _figures(run: Run) -> dict[str, bytes]:
    """The report's figures as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    history = {c: run.history[c].tolist() for c in run.history.columns if c != "epoch"}
    figures = {
        "scores": plot_scores(run.scores, top=30).figure,
        "plan": plot_plan(run.plan).figure,
        "history": plot_history(
            history,
            rescoring_history=run.rescoring,
            strengths_history=run.strengths,
            ncols=2,
            task=run.info.get("task"),
        ),
    }
    out = {}
    for name, fig in figures.items():
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100)
        plt.close(fig)
        out[name] = buffer.getvalue()
    return out


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, float):
        return "" if value != value else f"{value:.4g}"  # NaN: a metric this row does not have
    return str(value)


def _row_at(frame: pd.DataFrame, epoch) -> int:
    """Position of the last row at or before ``epoch`` (the last row when ``epoch`` is None)."""
    if epoch is None:
        return len(frame) - 1
    before = (frame["epoch"] <= int(epoch)).to_numpy().nonzero()[0]
    return int(before[-1]) if len(before) else 0


def _tables(run: Run) -> dict[str, pd.DataFrame]:
    """Every table of the report, as frames of strings (HTML and Markdown render the same ones)."""
    tables = {"data": _data_table(run.info.get("data", {}))}
    metrics = run.info.get("metrics", {})
    if metrics:
        tables["metrics"] = pd.DataFrame(metrics).T.map(_fmt).reset_index(names="rows")
    tables["scores"] = run.scores.to_frame()[["importance", "std", "group", "weak"]].map(_fmt).reset_index()
    tables["plan"] = _plan_table(run.plan)
    if len(run.rescoring) and len(run.strengths):
        tables["trajectories"] = _trajectories_table(run)
    if len(run.sensitivity):
        tables["sensitive"] = _sensitive_table(run)
    if run.plans:
        tables["replans"] = _replans_table(run.plans)
    if run.tuning is not None and len(run.tuning):
        top = run.tuning.head(10)
        if "rescoring" in top:  # None (no re-scoring) is an empty cell in the CSV
            top = top.fillna({"rescoring": "none"})
        tables["tuning"] = top.map(_fmt)
    return tables


def _data_table(data: Mapping[str, Any]) -> pd.DataFrame:
    rows = [("rows", data.get("rows")), ("columns", data.get("columns"))]
    rows += [(f"{kind} columns", n) for kind, n in data.get("kinds", {}).items()]
    missing = data.get("missing", {})
    rows.append(("columns with missing values", ", ".join(f"{c} ({n})" for c, n in missing.items()) or "none"))
    target = data.get("target", {})
    if "classes" in target:
        rows.append(("target classes (rows)", ", ".join(f"{c} ({n})" for c, n in target["classes"].items())))
    elif target:
        rows.append(("target", ", ".join(f"{k} {_fmt(v)}" for k, v in target.items())))
    return pd.DataFrame(rows, columns=["", "value"]).map(_fmt)


def _plan_table(plan: ArchitecturePlan) -> pd.DataFrame:
    strengths = plan.l1_strengths

    def strength_range(features) -> str:
        low, high = (f"{fn(strengths[f] for f in features):.3g}" for fn in (min, max))
        return low if low == high else f"{low} .. {high}"

    branch_rows = [
        (b.name, ", ".join(b.features), " -> ".join(str(u) for u in b.units), strength_range(b.features))
        for b in plan.branches
    ]
    branch_rows.append(("head", "all branches", " -> ".join(str(u) for u in plan.head_units) or "-", ""))
    return pd.DataFrame(branch_rows, columns=["branch", "features", "units", "L1 strength"])


def _trajectories_table(run: Run) -> pd.DataFrame:
    """The 20 features of highest network importance: where importance and L1 strength began and ended."""
    strengths = run.plan.l1_strengths
    features = [c for c in run.rescoring.columns if c != "epoch"]
    kept = _row_at(run.rescoring, run.info.get("best_epoch"))  # the weights (and strengths) kept
    first, last = run.rescoring.iloc[0], run.rescoring.iloc[kept]
    s_first, s_last = run.strengths.iloc[0], run.strengths.iloc[_row_at(run.strengths, run.info.get("best_epoch"))]
    frame = pd.DataFrame(
        {
            # the forest proxy's own figure: after a re-plan the final plan holds the network's importances
            "proxy importance": [run.scores.importances.get(f, float("nan")) for f in features],
            f"network importance, epoch {int(first['epoch'])}": [first[f] for f in features],
            f"network importance, epoch {int(last['epoch'])}": [last[f] for f in features],
            "L1 at plan": [strengths.get(f, float("nan")) for f in features],
            f"L1, epoch {int(s_first['epoch'])}": [s_first[f] for f in features],
            f"L1, epoch {int(s_last['epoch'])}": [s_last[f] for f in features],
        },
        index=pd.Index(features, name="feature"),
    ).sort_values(f"network importance, epoch {int(last['epoch'])}", ascending=False)
    return frame.head(20).map(_fmt).reset_index()


def _sensitive_table(run: Run) -> pd.DataFrame:
    flagged = run.sensitivity[run.sensitivity["flagged"].astype(bool)]
    frame = flagged[["held_out", "training"]].rename(
        columns={"held_out": "importance on held-out rows", "training": "importance on training rows"}
    )
    weak = run.scores.weak
    groups = run.scores.groups
    frame["forest proxy"] = [
        ("weak" if all(weak[f] for f in groups[c]) else "important") if c in groups else "" for c in frame.index
    ]
    return frame.map(_fmt).reset_index()


def _replans_table(plans) -> pd.DataFrame:
    rows = [
        (
            r["epoch"],
            "the forest proxy's scores" if r["reason"] == "scores" else r["reason"],
            ", ".join(r["moved"]) or "-",
            "; ".join(
                f"{b['name']}: {', '.join(b['features'][:6])}{' ...' if len(b['features']) > 6 else ''}"
                for b in r["plan"]["branches"]
            ),  # fmt: skip
        )
        for r in plans
    ]
    return pd.DataFrame(rows, columns=["after epoch", "planned from", "moved", "branches"]).map(_fmt)


def _summary(run: Run) -> str:
    info, scores, plan = run.info, run.scores, run.plan
    data = info.get("data", {})
    weak_groups = [g for g in scores.groups if all(scores.weak[f] for f in scores.groups[g])]
    metrics = validation_metrics(info.get("metrics", {}))
    shown = ", ".join(f"{k} {_fmt(v)}" for k, v in metrics.items())
    refit = (
        " Then a fresh network was trained on every row, validation rows included, for that many epochs: it is the "
        "saved model, and the validation figures describe the first network."
        if info.get("refit")
        else ""
    )
    top = scores.group_importances.sort_values(ascending=False).index[:3].tolist()
    return (
        f"{info.get('estimator', 'archguide')} on {data.get('rows', '?')} rows x {data.get('columns', '?')} columns "
        f"({info.get('task', scores.task)}). Most important: {', '.join(top)}; "
        f"{len(weak_groups)} of {len(scores.groups)} feature groups indistinguishable from noise. "
        f"The network has {len(plan.branches)} branches ({plan.total_units} first-layer units, "
        f"{info.get('n_params', plan.n_params())} parameters), trained {info.get('n_epochs', '?')} epochs, "
        f"the weights of epoch {info.get('best_epoch', '?')} kept. Validation: {shown}.{refit}"
    )


_TEXT = {
    "data": "The table the model was fitted on.",
    "metrics": "At the best epoch (the weights kept). Validation rows are the ones held out for early "
    "stopping and re-scoring; the regressor's figures are in the target's units, and r2 is 1 - MSE / the "
    "variance of the target over the rows fitted on.",
    "refit": " After the refit (refit=True) the saved model was trained on every row, validation rows included: "
    "its training figures are the last epoch's, and the validation figures are the first network's.",
    "scores": "The forest proxy's permutation importance on held-out rows, with the spread over repeats. "
    "Grey, hatched bars are weak: indistinguishable from noise (their columns start at the strongest penalty "
    "or are dropped, as the plan says). Correlated columns share a group and a colour.",
    "plan": "Each branch reads the features of one importance tier; its width follows their importance. "
    "Every feature passes a gate with its own L1 strength: the weaker the feature, the stronger the penalty.",
    "training": "Data loss (without the penalty) on training and validation rows; the L1 penalty apart; the "
    "network's own importance of the leading features at each re-scoring, and their L1 strengths, which "
    "follow it.",
    "trajectories": "Where the network's own importance (held-out rows) moved the penalties, from the first "
    "re-scoring to the best epoch (whose weights and strengths were kept): the 20 features it ranks highest there.",
    "replans": 'The network was re-planned while it trained. "residuals": when it had trained, a feature the '
    "plan called weak whose signal was left in its residuals (scored as the first scores were, with the weak "
    'features held at their means) left the weak set; "network importance" (replan=True): its own importance '
    "would put features in other branches or into the weak set at three re-scorings in a row. Each time it was "
    "planned again and warm-started from the weights that carry over. Each plan, the epochs trained before it "
    "and the features that moved; dotted lines in the training curves.",
    "tuning": "The search (archguide tune): each trial planned and trained a network with the values shown "
    "and was scored by its best validation data loss (penalty-free; for the regressor, in standardised target "
    "units), or its mean over folds; lower is better. The model above is the best trial's values refitted; the "
    "ten best trials are shown, every trial is in tuning.csv.",
    "sensitive": "Columns the network leans on for its training rows but not for held-out ones: sensitive "
    "is not important, the network fits noise through them. Where the forest proxy calls the column weak too, "
    "consider dropping it; where the proxy finds it important, the network has not learned its effect in a way "
    "that carries to new rows (more rows, a stronger penalty or more dropout may help).",
}


def _md_table(frame: pd.DataFrame) -> str:
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(c) for c in frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def _sections(run: Run, tables: Mapping[str, pd.DataFrame]) -> list[tuple[str, str, str | None, str | None]]:
    """``(title, text, table key, figure key)`` in report order."""
    sections = [
        ("Data", _TEXT["data"], "data", None),
        (
            "Final metrics",
            _TEXT["metrics"] + (_TEXT["refit"] if run.info.get("refit") else ""),
            "metrics" if "metrics" in tables else None,
            None,
        ),
        ("Feature scores", _TEXT["scores"], "scores", "scores"),
        ("The plan", _TEXT["plan"], "plan", "plan"),
        ("Training", _TEXT["training"], None, "history"),
    ]
    if "replans" in tables:
        sections.append((f"Re-plans ({len(tables['replans']) - 1})", _TEXT["replans"], "replans", None))
    if "trajectories" in tables:
        sections.append(("Importance and penalties across re-scorings", _TEXT["trajectories"], "trajectories", None))
    if "sensitive" in tables:
        flagged = len(tables["sensitive"])
        text = _TEXT["sensitive"] + ("" if flagged else " None was flagged.")
        sections.append(("Sensitive but not important", text, "sensitive" if flagged else None, None))
    if "tuning" in tables:
        n = len(run.tuning)
        sections.append((f"Architecture search ({n} trials)", _TEXT["tuning"], "tuning", None))
    return sections


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:.2em;
margin-top:1.8em}
.meta{color:#666;font-size:.9em}.summary{background:#f4f7fb;border-left:4px solid #1f77b4;padding:.7em 1em}
table{border-collapse:collapse;font-size:.88em;margin:.6em 0}th,td{border:1px solid #ddd;padding:.25em .6em;
text-align:left}th{background:#f2f2f2}tr:nth-child(even) td{background:#fafafa}
img{max-width:100%;height:auto;border:1px solid #eee;margin:.5em 0}pre{background:#f6f6f6;padding:.8em;
overflow-x:auto;font-size:.85em}details{margin:.5em 0}
"""


def _html_table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, escape=True, border=0)


def render_html(run: Run, figures: Mapping[str, bytes]) -> str:
    """The report as one HTML page: images embedded (base64 PNG), no external file or script."""
    tables = _tables(run)
    info = run.info
    title = f"archguide run: {info.get('target') or 'target'}"
    if info.get("data_path"):
        title += f" from {Path(info['data_path']).name}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="meta">{html.escape(info.get("estimator", ""))}, '
        f"archguide {html.escape(str(info.get('archguide_version', '')))}, {html.escape(str(info.get('created', '')))}"
        + (f", fitted in {info['fit_seconds']:.1f} s" if info.get("fit_seconds") else "")
        + "</p>",
        f'<p class="summary">{html.escape(_summary(run))}</p>',
    ]
    for title_, text, table, figure in _sections(run, tables):
        parts.append(f"<h2>{html.escape(title_)}</h2><p>{html.escape(text)}</p>")
        if figure is not None:
            encoded = base64.b64encode(figures[figure]).decode("ascii")
            parts.append(f'<img alt="{html.escape(title_)}" src="data:image/png;base64,{encoded}">')
        if table is not None:
            parts.append(_html_table(tables[table]))
    if run.config is not None:
        parts.append("<h2>Configuration</h2><details><summary>config.yaml (every key, defaults included)</summary>")
        parts.append(f"<pre>{html.escape(yaml.safe_dump(run.config, sort_keys=False))}</pre></details>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def render_markdown(run: Run, figure_dir: str = "figures") -> str:
    """The report in Markdown; images are referenced as ``figures/<name>.png``."""
    tables = _tables(run)
    info = run.info
    lines = [f"# archguide run: {info.get('target') or 'target'}", "", _summary(run), ""]
    for title, text, table, figure in _sections(run, tables):
        lines += [f"## {title}", "", text, ""]
        if figure is not None:
            lines += [f"![{title}]({figure_dir}/{figure}.png)", ""]
        if table is not None:
            lines += [_md_table(tables[table]), ""]
    return "\n".join(lines)


def write_report(directory: str | Path) -> list[Path]:
    """(Re)build ``report.html``, ``report.md`` and ``figures/`` of a run directory, all or nothing.

    Returns:
        The paths written.

    Raises:
        DataError: as :func:`load_run`.
    """
    run = load_run(directory)
    figures = _figures(run)
    directory = Path(directory)
    outputs = [
        (directory / "report.html", lambda p: p.write_text(render_html(run, figures), encoding="utf-8")),
        (directory / "report.md", lambda p: p.write_text(render_markdown(run), encoding="utf-8")),
    ]
    for name, data in figures.items():
        outputs.append((directory / "figures" / f"{name}.png", lambda p, data=data: p.write_bytes(data)))
    write_files(outputs)
    return [path for path, _ in outputs]
