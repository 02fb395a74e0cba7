import json

import numpy as np
import pandas as pd
import pytest
from conftest import run_python

import archguide as ag
from archguide._files import atomic_write
from archguide.cli import demo_data, main


@pytest.fixture
def csv_path(tmp_path, friedman):
    X, y = friedman
    frame = pd.DataFrame(X[:1000], columns=[f"f{i}" for i in range(X.shape[1])])
    frame["price"] = y[:1000]
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    return path


def test_demo_runs_the_main_job_and_writes_a_report(capsys, tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--set", "training.epochs=15"]) == 0
    text = capsys.readouterr().out
    assert "diabetes" in text and "bmi+bmi_copy" in text
    assert "Plan:" in text and "tier_1" in text
    rows = [line.split() for line in text.splitlines() if line.startswith(("  archguide ", "  plain MLP"))]
    assert [r[0] for r in rows] == ["archguide", "plain"] and all(float(r[-3]) < 1 for r in rows)  # R2 column
    assert "Known truth: 3 of 3 noise columns flagged weak; bmi and bmi_copy scored as one group." in text
    est = ag.load(out / "model.keras")
    assert all(est.scores_.weak[f"noise_{i}"] for i in range(3))
    assert not est.scores_.weak["bmi"] and not est.scores_.weak["s5"]
    info = json.loads((out / "run.json").read_text())
    assert set(info["metrics"]) == {"validation", "training", "test, archguide", "test, plain MLP 64-32"}
    assert "test, plain MLP 64-32" in (out / "report.html").read_text()
    # a second run replaces the previous demo and gives the same figures (seeded); only the seconds differ
    (out / "model.keras").unlink()
    assert main(["demo", "--out", str(out), "--set", "training.epochs=15"]) == 0
    again = [line.split() for line in capsys.readouterr().out.splitlines()
             if line.startswith(("  archguide ", "  plain MLP"))]  # fmt: skip
    assert [r[:-1] for r in again] == [r[:-1] for r in rows]
    assert (out / "model.keras").exists()


def test_demo_does_not_replace_a_directory_that_is_not_a_demo(tmp_path, capsys):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    assert main(["demo", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "exists and is not empty" in err and "choose another --out" in err
    assert "--overwrite" not in err  # demo has no such option
    assert [p.name for p in out.iterdir()] == ["mine.txt"]


def test_demo_data_has_the_known_extras():
    X, y, _ = demo_data()
    assert X.shape == (442, 14) and len(y) == 442
    assert np.corrcoef(X["bmi"], X["bmi_copy"])[0, 1] > 0.99


def test_score_a_csv_with_plot_and_json(csv_path, tmp_path, capsys):
    out, plot = tmp_path / "out" / "scores.json", tmp_path / "scores.png"
    code = main(
        [
            "score",
            str(csv_path),
            "--target",
            "price",
            "--set",
            "scoring.random_state=0",
            "--out",
            str(out),
            "--plot",
            str(plot),
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "task: regression" in text
    data = json.loads(out.read_text())
    top5 = sorted(data["features"], key=lambda f: -data["importances"][data["features"].index(f)])[:5]
    assert sorted(top5) == [f"f{i}" for i in range(5)]
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_target_from_config_file(csv_path, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("data:\n  target: price\nscoring:\n  n_repeats: 2\n")
    assert main(["score", str(csv_path), "--config", str(config)]) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["score", "{csv}", "--target", "nope"], "Target column 'nope' is not in the data. Columns: "),
        (["score", "{csv}", "--target", "prise"], "Target column 'prise' is not in the data. Did you mean 'price'?"),
        (["score", "{csv}", "--target", "PRICE"], "Did you mean 'price'?"),
        (["score", "{csv}"], "No target column given"),
        (["score", "{missing}", "--target", "y"], "does not exist"),
        (["score", "{csv}", "--target", "price", "--set", "scoring.n_repeat=2"], "Allowed keys in scoring"),
        (["demo", "--out", "{tmp}/demo", "--set", "scoring.n_repeats=0"], "n_repeats"),
        (["score", "{csv}", "--target", "price", "--set", "scoring.scoring=foo"], "scoring='foo'"),
        (
            ["score", "{csv}", "--target", "price", "--set", "scoring.random_state=abc"],
            "'scoring.random_state' must be an integer or null",
        ),
        (
            ["score", "{csv}", "--target", "price", "--set", "scoring.n_jobs=two"],
            "'scoring.n_jobs' must be an integer or null",
        ),
        (["score", "{csv}", "--target", "price", "--plot", "{tmp}/x.xyz"], "expected one of .avif"),
        (["score", "{csv}", "--target", "price", "--plot", "{tmp}/noext"], "no extension"),
        (["score", "{csv}", "--target", "price", "--config", "{missing}"], "Could not read config file"),
        (["score", "{tmp}", "--target", "price"], "Could not read"),
        (["score", "{csv}", "--target", "price", "--out", "{csv}/s.json"], "Could not write"),
    ],
)
def test_errors_are_one_line_and_exit_1(args, message, csv_path, tmp_path, capsys):
    args = [a.format(csv=csv_path, missing=tmp_path / "missing.csv", tmp=tmp_path) for a in args]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("archguide: error:") and message in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_an_unexpected_error_is_one_line_too(csv_path, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("something\ndeep inside")

    monkeypatch.setattr("archguide.scoring.score.score_features", broken)
    assert main(["score", str(csv_path), "--target", "price"]) == 1
    err = capsys.readouterr().err
    assert err == "archguide: error: unexpected RuntimeError: something deep inside (run with -v for the traceback)\n"


def test_a_failing_plot_leaves_the_scores_file_as_it_was(csv_path, tmp_path, monkeypatch):
    out = tmp_path / "scores.json"
    out.write_text("precious")
    (tmp_path / "blocker").write_text("a file, not a folder")
    args = ["score", str(csv_path), "--target", "price", "--out", str(out)]
    assert main([*args, "--plot", str(tmp_path / "blocker" / "x.png")]) == 1
    assert out.read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker", "data.csv", "scores.json"]

    # A plot into folders that do not exist yet: made when it succeeds, removed when it fails.
    def failing_savefig(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("matplotlib.figure.Figure.savefig", failing_savefig)
    assert main([*args, "--plot", str(tmp_path / "new" / "deeper" / "x.png")]) == 1
    assert out.read_text() == "precious" and not (tmp_path / "new").exists()


def test_files_keep_their_mode_and_new_ones_follow_the_umask(csv_path, tmp_path):
    import os
    import stat

    existing, new = tmp_path / "old.json", tmp_path / "new.png"
    existing.write_text("{}")
    existing.chmod(0o640)
    previous = os.umask(0o027)
    try:
        assert main(["score", str(csv_path), "--target", "price", "--out", str(existing), "--plot", str(new)]) == 0
    finally:
        os.umask(previous)
    assert stat.S_IMODE(existing.stat().st_mode) == 0o640
    assert stat.S_IMODE(new.stat().st_mode) == 0o640  # 0o666 less the umask 0o027


@pytest.mark.parametrize(("suffix", "magic"), [(".pdf", b"%PDF"), (".svg", b"<?xml"), (".png", b"\x89PNG")])
def test_the_plot_format_follows_the_extension(csv_path, tmp_path, suffix, magic):
    plot = tmp_path / f"scores{suffix}"
    assert main(["score", str(csv_path), "--target", "price", "--plot", str(plot)]) == 0
    assert plot.read_bytes().startswith(magic)


def test_failed_run_leaves_existing_output_untouched(csv_path, tmp_path):
    out = tmp_path / "scores.json"
    out.write_text("precious")
    assert main(["score", str(csv_path), "--target", "nope", "--out", str(out)]) == 1
    assert out.read_text() == "precious"


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("old")

    def broken(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(path, broken)
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]
    atomic_write(path, lambda tmp: tmp.write_text("new"))
    assert path.read_text() == "new"


def test_python_dash_m_entry_point():
    result = run_python("", "-m", "archguide", "--version")
    assert result.stdout.startswith("archguide ")


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_predict_writes_what_the_saved_model_predicts(tmp_path, friedman, task, capsys):
    X, y = friedman
    frame = pd.DataFrame(X[:300, :5], columns=[f"f{i}" for i in range(5)])
    if task == "regression":
        est = ag.ImportanceGuidedRegressor(epochs=2, random_state=0)
        target = y[:300]
    else:
        est = ag.ImportanceGuidedClassifier(epochs=2, random_state=0)
        target = np.where(y[:300] > np.median(y[:300]), "high", "low")
    est.fit(frame, target)
    est.save(tmp_path / "model.keras")
    data = tmp_path / "new.csv"
    frame[frame.columns[::-1]].assign(extra=1.0).to_csv(data, index=False)  # other order, an extra column
    out = tmp_path / "preds.csv"
    assert main(["predict", str(tmp_path / "model.keras"), str(data), "--out", str(out)]) == 0
    assert "300 predictions written" in capsys.readouterr().out
    written = pd.read_csv(out)
    if task == "regression":
        assert list(written.columns) == ["prediction"]
        np.testing.assert_allclose(written["prediction"], est.predict(frame), rtol=1e-6)
    else:
        assert list(written.columns) == ["prediction", "proba_high", "proba_low"]
        assert (written["prediction"] == est.predict(frame)).all()
        np.testing.assert_allclose(written[["proba_high", "proba_low"]], est.predict_proba(frame), rtol=1e-6)


def test_predict_errors_are_one_line(tmp_path, csv_path, capsys):
    out = tmp_path / "preds.csv"
    assert main(["predict", str(tmp_path / "missing.keras"), str(csv_path), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("archguide: error: Model file") and "does not exist" in err and err.count("\n") == 1
    assert not out.exists()
    frame = pd.read_csv(csv_path).iloc[:200]
    ag.ImportanceGuidedRegressor(epochs=1, random_state=0).fit(frame[["f0", "f1"]], frame["price"]).save(
        tmp_path / "m.keras"
    )
    frame[["f1", "price"]].to_csv(tmp_path / "lacking.csv", index=False)
    assert main(["predict", str(tmp_path / "m.keras"), str(tmp_path / "lacking.csv"), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("archguide: error: ") and "f0" in err and err.count("\n") == 1
    assert not out.exists()
