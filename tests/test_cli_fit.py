"""archguide fit, report and predict end to end on files in tmp_path."""

import json
import os
import re

import numpy as np
import pandas as pd
import pytest
import yaml

import archguide as ag
from archguide.cli import main
from archguide.config import validate

EPOCHS = "training.epochs=15"


def _frame(n=300, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "a": rng.standard_normal(n),
            "b": rng.standard_normal(n),
            "city": rng.choice(["lyon", "nice", "paris"], n),
            "noise": rng.standard_normal(n),
        }
    )
    frame.loc[rng.choice(n, 20, replace=False), "b"] = np.nan
    frame["price"] = 2 * frame["a"] + frame["b"].fillna(0) + (frame["city"] == "nice") + 0.1 * rng.standard_normal(n)
    frame["label"] = np.where(frame["price"] > frame["price"].median(), "high", "low")
    return frame


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fit")
    frame = _frame()
    # the target sits between the features, and an id column that is not a feature is not there
    data = folder / "data.csv"
    frame.drop(columns=["label"]).to_csv(data, index=False)
    out = folder / "run"
    import archguide.report

    real_save_run = archguide.report.save_run

    def keep_estimator(estimator, *args, **kwargs):  # the fitted estimator, for its validation rows
        _FITTED["regression"] = estimator
        return real_save_run(estimator, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(archguide.report, "save_run", keep_estimator)
        code = main(["fit", str(data), "--target", "price", "--out", str(out), "--set", EPOCHS,
                     "--set", "training.random_state=0"])  # fmt: skip
    assert code == 0
    return out, frame, data


_FITTED = {}


def test_fit_writes_every_file_of_a_run(regression_run):
    out, _, _ = regression_run
    names = {p.name for p in out.iterdir()}
    assert {"model.keras", "config.yaml", "run.json", "scores.json", "plan.yaml", "history.csv", "rescoring.csv",
            "strengths.csv", "sensitivity.csv", "report.html", "report.md", "figures"} <= names  # fmt: skip
    assert sorted(p.name for p in (out / "figures").iterdir()) == ["history.png", "plan.png", "scores.png"]
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no staging left behind


def test_the_run_files_agree_with_the_saved_model(regression_run):
    out, frame, data = regression_run
    est = ag.load(out / "model.keras")
    assert isinstance(est, ag.ImportanceGuidedRegressor)
    assert list(est.feature_names_in_) == ["a", "b", "city", "noise"]
    assert ag.ArchitecturePlan.from_dict(yaml.safe_load((out / "plan.yaml").read_text())) == est.plan_
    scores = json.loads((out / "scores.json").read_text())
    assert scores == json.loads(json.dumps(est.scores_.to_dict()))
    history = pd.read_csv(out / "history.csv")
    assert list(history["epoch"]) == list(range(1, est.n_epochs_ + 1))
    np.testing.assert_allclose(history["val_data_loss"], est.history_["val_data_loss"])
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["training"]["epochs"] == 15 and config["data"]["target"] == "price"
    assert validate(config) == config  # the resolved config loads as a config
    info = json.loads((out / "run.json").read_text())
    assert info["data"]["rows"] == 300 and info["data"]["missing"] == {"b": 20}
    assert info["data"]["kinds"] == {"categorical": 1, "numeric": 3}
    assert info["best_epoch"] == est.best_epoch_ and info["metrics"]["validation"]["mse"] > 0
    # the reported validation MSE is the saved model's own, on the rows it held out, in the target's units
    table = pd.read_csv(data)
    rows = _FITTED["regression"].validation_indices_
    predicted = est.predict(table.drop(columns=["price"]).iloc[rows])
    mse = float(np.mean((predicted - table["price"].to_numpy()[rows]) ** 2))
    assert info["metrics"]["validation"]["mse"] == pytest.approx(mse, rel=1e-4)
    assert info["metrics"]["validation"]["r2"] == pytest.approx(1 - mse / table["price"].var(ddof=0), rel=1e-3)


def test_fit_prints_a_summary(tmp_path, capsys):
    data = tmp_path / "d.csv"
    _frame().drop(columns=["label"]).to_csv(data, index=False)
    assert main(["fit", str(data), "--target", "price", "--out", str(tmp_path / "r"), "--set", EPOCHS]) == 0
    out = capsys.readouterr().out
    assert "ImportanceGuidedRegressor on 300 rows x 4 columns" in out
    assert "branches" in out and "validation mse" in out and "report.html" in out
    # it counts groups of columns (correlated ones are scored together), and says so
    assert re.search(r"\d+ of \d+ column groups weak", out) and " columns weak" not in out


def test_a_classification_target_fits_a_classifier_and_predict_gives_probabilities(tmp_path):
    data = tmp_path / "d.csv"
    _frame().drop(columns=["price"]).to_csv(data, index=False)
    out = tmp_path / "run"
    assert main(["fit", str(data), "--target", "label", "--out", str(out), "--set", EPOCHS]) == 0
    est = ag.load(out / "model.keras")
    assert isinstance(est, ag.ImportanceGuidedClassifier) and list(est.classes_) == ["high", "low"]
    info = json.loads((out / "run.json").read_text())
    assert info["task"] == "binary" and set(info["metrics"]["validation"]) == {"log_loss", "accuracy"}
    assert info["data"]["target"] == {"classes": {"high": 150, "low": 150}}
    preds = tmp_path / "p.csv"
    assert main(["predict", str(out / "model.keras"), str(data), "--out", str(preds)]) == 0
    table = pd.read_csv(preds)
    assert list(table.columns) == ["prediction", "proba_high", "proba_low"]
    frame = pd.read_csv(data)
    np.testing.assert_array_equal(table["prediction"], est.predict(frame.drop(columns=["label"])))


def test_a_config_file_and_overrides_reach_the_estimator(tmp_path):
    data = tmp_path / "d.csv"
    _frame().drop(columns=["label"]).to_csv(data, index=False)
    config = tmp_path / "c.yaml"
    config.write_text(
        "data:\n  target: price\nplanning:\n  total_units: 32\n  n_tiers: 2\nrescoring:\n  method: null\n"
    )
    out = tmp_path / "run"
    assert main(["fit", str(data), "--config", str(config), "--out", str(out), "--set", EPOCHS]) == 0
    est = ag.load(out / "model.keras")
    assert est.plan_.total_units == 32 and len(est.plan_.branches) <= 2
    assert est.get_params()["rescoring"] is None and est.rescoring_history_.empty
    assert "Importance and penalties" not in (out / "report.md").read_text()


def test_fit_reads_parquet(tmp_path):
    pytest.importorskip("pyarrow")
    data = tmp_path / "d.parquet"
    _frame().drop(columns=["label"]).to_parquet(data)
    out = tmp_path / "run"
    assert main(["fit", str(data), "--target", "price", "--out", str(out), "--set", EPOCHS]) == 0
    assert ag.load(out / "model.keras").n_features_in_ == 4


def test_an_existing_run_is_kept_without_overwrite_and_replaced_with_it(regression_run, tmp_path, capsys):
    out, _, data = regression_run
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert main(["fit", str(data), "--target", "price", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "exists and is not empty" in err and "--overwrite" in err
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    # --overwrite replaces it; a stale file of the old run does not survive
    copy = tmp_path / "run"
    copy.mkdir()
    (copy / "stale.txt").write_text("old")
    os.chmod(copy, 0o750)
    assert main(["fit", str(data), "--target", "price", "--out", str(copy), "--overwrite", "--set", EPOCHS]) == 0
    assert not (copy / "stale.txt").exists() and (copy / "model.keras").exists()
    assert (copy.stat().st_mode & 0o777) == 0o750  # a replaced directory keeps its mode


def test_a_failed_fit_leaves_the_old_run_as_it_was(regression_run, tmp_path, capsys):
    _, _, data = regression_run
    old = tmp_path / "run"
    old.mkdir()
    (old / "model.keras").write_text("the old model")
    code = main(["fit", str(data), "--target", "price", "--out", str(old), "--overwrite",
                 "--set", "training.learning_rate=1e30", "--set", EPOCHS])  # fmt: skip
    assert code == 1
    assert "diverged" in capsys.readouterr().err
    assert (old / "model.keras").read_text() == "the old model"
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "prise"], "Target column 'prise' is not in the data. Did you mean 'price'?"),
        (["--target", "price", "--set", "training.epochz=3"], "Did you mean 'epochs'?"),
        (["--target", "price", "--set", "scoring.noise_alpha=0.1"], "scoring.noise_alpha is an option of archguide"),
        (["--target", "price", "--set", "scoring.task=binary"], "task='binary' needs exactly two classes"),
    ],
)
def test_fit_errors_are_one_line(regression_run, tmp_path, capsys, args, message):
    _, _, data = regression_run
    out = tmp_path / "run"
    assert main(["fit", str(data), *args, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not out.exists()


def test_a_target_with_missing_values_names_the_lines(tmp_path, capsys):
    frame = _frame(50)
    frame.loc[[3, 7], "price"] = np.nan
    data = tmp_path / "d.csv"
    frame.to_csv(data, index=False)
    assert main(["fit", str(data), "--target", "price", "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert "Target column 'price' has 2 missing values (file lines 5, 9): remove those rows." in err


def test_missing_and_unreadable_files_are_one_line(tmp_path, capsys):
    assert main(["fit", str(tmp_path / "nope.csv"), "--target", "y", "--out", str(tmp_path / "r")]) == 1
    assert "does not exist" in capsys.readouterr().err
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    assert main(["fit", str(bad), "--target", "y", "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ("Parquet" in err)


def test_report_rebuilds_the_report_of_a_run(regression_run, tmp_path, capsys):
    out, _, _ = regression_run
    html = (out / "report.html").read_text()
    (out / "report.html").unlink()
    (out / "figures" / "plan.png").unlink()
    assert main(["report", str(out)]) == 0
    assert "report written to" in capsys.readouterr().out
    rebuilt = (out / "report.html").read_text()
    assert (out / "figures" / "plan.png").exists()
    strip = [line for line in html.splitlines() if "base64" not in line]
    assert [line for line in rebuilt.splitlines() if "base64" not in line] == strip


def test_report_of_a_directory_that_is_not_a_run(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["report", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "not an archguide run directory" in err and "run.json" in err


def test_every_subcommand_has_help(capsys):
    for command in ("fit", "tune", "report", "predict", "score", "demo"):
        with pytest.raises(SystemExit) as exit_:
            main([command, "--help"])
        assert exit_.value.code == 0
        assert "usage: archguide " + command in capsys.readouterr().out


def test_tune_writes_a_run_with_its_trials(regression_run, tmp_path, capsys):
    _, frame, data = regression_run
    out = tmp_path / "tuned"
    code = main(["tune", str(data), "--target", "price", "--max-trials", "2", "--out", str(out),
                 "--set", "training.epochs=4", "--set", "training.random_state=0", "--set", "tuning.tuner=random",
                 "--set", "tuning.search_space={depth: [1, 2], total_units: [16, 64]}"])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "2 of 2 trials completed" in printed
    trials = pd.read_csv(out / "tuning.csv")
    assert len(trials) == 2 and trials["score"].is_monotonic_increasing
    est = ag.load(out / "model.keras")
    best = trials.iloc[0]
    assert est.get_params()["depth"] == best["depth"] and est.get_params()["total_units"] == best["total_units"]
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["planning"]["depth"] == best["depth"]  # the config refits the best trial
    assert config["tuning"]["max_trials"] == 2
    assert "Architecture search (2 trials)" in (out / "report.html").read_text()
    # archguide fit with the run's config.yaml refits the same model
    assert main(["fit", str(data), "--config", str(out / "config.yaml"), "--out", str(tmp_path / "refit")]) == 0
    X = frame.drop(columns=["price", "label"])
    np.testing.assert_allclose(ag.load(tmp_path / "refit" / "model.keras").predict(X), est.predict(X), rtol=1e-5)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tune", "--max-trials", "0"], "--max-trials must be a positive integer. Received: 0"),
        (["tune", "--set", "tuning.tuner=grid"], "Config key 'tuning.tuner' must be"),
        (["tune", "--set", "tuning.search_space={depth: [3, 1]}"], "inverted range for depth"),
    ],
)
def test_tune_errors_are_one_line(regression_run, tmp_path, capsys, args, message):
    _, _, data = regression_run
    out = tmp_path / "run"
    assert main([args[0], str(data), "--target", "price", *args[1:], "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not out.exists()


# ---------------------------------------------------------------------- start-up


def _imports_tensorflow(*args, cwd=None) -> tuple[bool, str]:
    """Run the command line in a fresh process: whether it imported TensorFlow, and its error stream."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(sys.executable).parent / "archguide"
    command = [str(script), *args] if script.exists() else [sys.executable, "-m", "archguide", *args]
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a user runs it
    result = subprocess.run(
        [sys.executable, "-X", "importtime", *command[1:]] if command[0] == sys.executable else command,
        capture_output=True, text=True, timeout=300, cwd=cwd, env={**env, "PYTHONPROFILEIMPORTTIME": "1"},
    )  # fmt: skip
    imported = [line for line in result.stderr.splitlines() if line.startswith("import time:")]
    return any(line.split("|")[-1].strip().startswith("tensorflow") for line in imported), "\n".join(
        line for line in result.stderr.splitlines() if not line.startswith("import time:")
    )


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["fit", "--help"],
        ["fit", "data.csv", "--target", "y", "--out", "r", "--set", "training.epochz=3"],
        ["tune", "data.csv", "--target", "y", "--out", "r", "--max-trials", "0"],
        ["score", "missing.csv", "--target", "y"],
    ],
)
def test_help_and_argument_errors_do_not_import_tensorflow(args, tmp_path):
    imported, err = _imports_tensorflow(*args, cwd=tmp_path)
    assert not imported, err


def test_report_does_not_import_tensorflow_and_fit_hides_its_start_up_lines(regression_run, tmp_path):
    out, _, data = regression_run
    imported, err = _imports_tensorflow("report", str(out))
    assert not imported and "report written" not in err, err
    imported, err = _imports_tensorflow("fit", str(data), "--target", "price", "--out", str(tmp_path / "r"),
                                        "--set", "training.epochs=1")  # fmt: skip
    assert imported and (tmp_path / "r" / "model.keras").exists()
    assert "absl" not in err and "oneDNN" not in err and "cpu_feature_guard" not in err, err


def test_python_dash_m_imports_keras_only_for_a_command_that_needs_it():
    from conftest import run_python

    result = run_python("", "-X", "importtime", "-m", "archguide", "--version")
    assert "tensorflow" not in result.stderr and result.stdout.startswith("archguide ")
    # a plain import still registers the Keras objects (a saved model loads after `import archguide`)
    result = run_python("import sys, archguide; print('keras' in sys.modules, archguide.FeatureGate.__name__)")
    assert result.stdout.split() == ["True", "FeatureGate"]
