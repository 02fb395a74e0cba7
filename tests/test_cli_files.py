"""The user's files through the command line: never destroyed, checked before any work, tables as people have them."""

import json
import os

import numpy as np
import pandas as pd
import pytest

from archguide._files import write_files
from archguide.cli import main

FAST = ["--set", "training.epochs=2", "--set", "training.random_state=0"]


def _table(n=200, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"a": rng.standard_normal(n), "b": rng.standard_normal(n), "c": rng.standard_normal(n)})
    frame["y"] = 2 * frame["a"] + frame["b"] + 0.1 * rng.standard_normal(n)
    frame["key"] = [f"row{i}" for i in range(n)]
    return frame


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A fitted run directory whose config names an id column; the data file beside it."""
    folder = tmp_path_factory.mktemp("run")
    data = folder / "data.csv"
    _table().to_csv(data, index=False)
    out = folder / "run"
    assert main(["fit", str(data), "--target", "y", "--out", str(out), "--set", "data.id=key", *FAST]) == 0
    return out, data


def _error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("archguide: error:") and err.count("\n") == 1, err
    return err


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------- the user's files are never destroyed


def test_predict_refuses_to_write_over_its_inputs_or_into_the_run(run, tmp_path, capsys):
    out, data = run
    before, data_bytes = _snapshot(out), data.read_bytes()
    for target, message in [
        (data, "is the input data file"),
        (out / "model.keras", "is the model file"),
        (out / "run.json", "inside the run directory"),
        (out / "figures" / "new.csv", "inside the run directory"),
    ]:
        assert main(["predict", str(out / "model.keras"), str(data), "--out", str(target)]) == 1
        assert message in _error(capsys)
    assert data.read_bytes() == data_bytes and _snapshot(out) == before


def test_predict_writes_the_id_column_beside_the_predictions(run, tmp_path, capsys):
    out, data = run
    preds = tmp_path / "preds.csv"
    assert main(["predict", str(out / "model.keras"), str(data), "--out", str(preds)]) == 0
    written = pd.read_csv(preds)
    assert list(written.columns) == ["key", "prediction"]  # the run's data.id, taken from its config.yaml
    assert written["key"].tolist() == pd.read_csv(data)["key"].tolist()
    # an explicit --id, and one that is not in the file
    assert main(["predict", str(out / "model.keras"), str(data), "--out", str(preds), "--id", "a"]) == 0
    assert list(pd.read_csv(preds).columns) == ["a", "prediction"]
    assert main(["predict", str(out / "model.keras"), str(data), "--out", str(preds), "--id", "kee"]) == 1
    assert "--id names 'kee'" in _error(capsys) or "Did you mean 'key'" in capsys.readouterr().err


def test_fit_overwrite_never_deletes_the_data_being_read(tmp_path, capsys):
    folder = tmp_path / "d"
    folder.mkdir()
    data = folder / "data.csv"
    _table().to_csv(data, index=False)
    (folder / "notes.txt").write_text("mine")
    before = _snapshot(folder)
    assert main(["fit", str(data), "--target", "y", "--out", str(folder), "--overwrite", *FAST]) == 1
    assert "holds the input data file" in _error(capsys)
    config = tmp_path / "d2" / "c.yaml"
    config.parent.mkdir()
    config.write_text("training:\n  epochs: 2\n")
    assert main(["fit", str(data), "--target", "y", "--out", str(config.parent), "--config", str(config),
                 "--overwrite"]) == 1  # fmt: skip
    assert "holds the config file" in _error(capsys)
    assert _snapshot(folder) == before and config.exists()


@pytest.mark.parametrize(
    ("command", "out", "message"),
    [
        ("fit", "{data}/sub", "is a file, not a folder"),
        ("fit", ".", "is the current directory"),
        ("fit", "/sys/archguide-run", "no file can be made in '/sys'"),
        ("score", "{tmp}", "is a directory"),
        ("score", "{data}/s.json", "is a file, not a folder"),
        ("score", "/sys/archguide/s.json", "no file can be made in '/sys'"),
        ("predict", "{tmp}", "is a directory"),
        ("predict", "/sys/archguide/p.csv", "no file can be made in '/sys'"),
    ],
)
def test_output_paths_are_checked_before_any_work(command, out, message, tmp_path, capsys, monkeypatch):
    data = tmp_path / "data.csv"
    _table().to_csv(data, index=False)
    monkeypatch.chdir(tmp_path)
    out = out.format(data=data, tmp=tmp_path)

    def no_work(*args, **kwargs):
        raise AssertionError("the work started before the output path was checked")

    monkeypatch.setattr("archguide.cli._read_table", no_work)
    args = {
        "fit": ["fit", str(data), "--target", "y", "--out", out],
        "score": ["score", str(data), "--target", "y", "--out", out],
        "predict": ["predict", str(tmp_path / "m.keras"), str(data), "--out", out],
    }[command]
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(args) == 1
    assert message in _error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no hidden temporary left behind


def test_score_refuses_the_data_file_and_one_path_for_two_outputs(tmp_path, capsys):
    data = tmp_path / "data.csv"
    _table().to_csv(data, index=False)
    before = data.read_bytes()
    assert main(["score", str(data), "--target", "y", "--out", str(data)]) == 1
    assert "is the input data file" in _error(capsys)
    same = str(tmp_path / "s.png")
    assert main(["score", str(data), "--target", "y", "--out", same, "--plot", same]) == 1
    assert "give them different paths" in _error(capsys)
    assert data.read_bytes() == before


def test_a_failed_fit_leaves_no_hidden_directory_behind(tmp_path, capsys, monkeypatch):
    data = tmp_path / "data.csv"
    _table().to_csv(data, index=False)
    monkeypatch.chdir(tmp_path)

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("archguide.report.write_report", broken)
    assert main(["fit", str(data), "--target", "y", "--out", "r", *FAST]) == 1
    assert "No space left" in capsys.readouterr().err.splitlines()[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv"]


def test_write_files_puts_every_old_file_back_when_a_move_fails(tmp_path, monkeypatch):
    first, second, third = tmp_path / "a.txt", tmp_path / "b.txt", tmp_path / "new.txt"
    first.write_text("old a")
    second.write_text("old b")
    real_replace, calls = os.replace, []

    def failing_replace(src, dst):
        calls.append(dst)
        if str(dst) == str(third):  # the last move into place fails
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr("archguide._files.os.replace", failing_replace)
    outputs = [(p, lambda tmp, p=p: tmp.write_text(f"new {p.name}")) for p in (first, second, third)]
    with pytest.raises(OSError, match="No space"):
        write_files(outputs)
    assert first.read_text() == "old a" and second.read_text() == "old b" and not third.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]
    monkeypatch.setattr("archguide._files.os.replace", real_replace)
    write_files(outputs)
    assert [p.read_text() for p in (first, second, third)] == ["new a.txt", "new b.txt", "new new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt", "new.txt"]


# ---------------------------------------------------------------------- tables as people have them


def test_a_row_index_written_by_pandas_is_left_out_with_a_warning(tmp_path, capsys):
    data = tmp_path / "data.csv"
    _table().drop(columns=["key"]).to_csv(data)  # pandas' default: the index as a leading unnamed column
    scores = tmp_path / "s.json"
    assert main(["score", str(data), "--target", "y", "--out", str(scores)]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "archguide: warning:" in err and "row index" in err
    assert json.loads(scores.read_text())["features"] == ["a", "b", "c"]


def test_an_unnamed_column_that_is_not_an_index_is_kept(tmp_path, capsys):
    data = tmp_path / "data.csv"
    frame = _table().drop(columns=["key"])
    frame.insert(0, "", np.round(frame["a"] * 10))  # unnamed, but repeated values: data, not a row number
    frame.to_csv(data, index=False)
    scores = tmp_path / "s.json"
    assert main(["score", str(data), "--target", "y", "--out", str(scores)]) == 0
    assert "warning" not in capsys.readouterr().err
    assert json.loads(scores.read_text())["features"][0] == "Unnamed: 0"


def test_data_drop_and_data_id_keep_columns_out_of_the_features(tmp_path, capsys):
    data = tmp_path / "data.csv"
    _table().to_csv(data, index=False)
    scores = tmp_path / "s.json"
    args = ["score", str(data), "--target", "y", "--out", str(scores)]
    assert main([*args, "--set", "data.drop=[c]", "--set", "data.id=key"]) == 0
    assert json.loads(scores.read_text())["features"] == ["a", "b"]
    assert main([*args, "--set", "data.drop=[cc]"]) == 1
    assert "data.drop names 'cc'" in _error(capsys)
    assert main([*args, "--set", "data.id=y"]) == 1
    assert "data.id 'y' is also the target" in _error(capsys)


def test_a_repeated_header_name_is_refused(tmp_path, capsys):
    data = tmp_path / "dup.csv"
    data.write_text("speed,speed,y\n1,2,3\n4,5,6\n")
    assert main(["score", str(data), "--target", "y"]) == 1
    assert "repeats the column name 'speed'" in _error(capsys)


def test_a_header_without_rows_says_so(tmp_path, capsys):
    data = tmp_path / "empty.csv"
    data.write_text("a,b,y\n")
    for command in (["score", str(data), "--target", "y"], ["fit", str(data), "--target", "y", "--out", "r"]):
        assert main(command) == 1
        assert "has no rows" in _error(capsys)
