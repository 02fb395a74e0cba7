"""Tables bigger than memory: Parquet datasets and dask DataFrames, streamed by fit and predict."""

import os
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import archguide as ag
from archguide.datasets import open_dataset, scan, validation_positions
from archguide.estimators.preprocessing import ColumnEncoding
from archguide.exceptions import DataError
from archguide.schema import as_table

dd = pytest.importorskip("dask.dataframe")


def _frame(n=600, seed=0):
    """Mixed columns with a known truth: y follows a, the city and b (with gaps); noise is noise."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "a": rng.standard_normal(n),
            "b": rng.standard_normal(n),
            "count": rng.integers(0, 50, n),
            "city": rng.choice(["lyon", "nice", "paris"], n),
            "flag": rng.random(n) < 0.3,
            "noise": rng.standard_normal(n),
        }
    )
    frame.loc[rng.choice(n, n // 15, replace=False), "b"] = np.nan
    frame["y"] = 2 * frame["a"] + frame["b"].fillna(0) + (frame["city"] == "nice") + 0.1 * rng.standard_normal(n)
    frame["label"] = np.where(frame["y"] > frame["y"].median(), "high", "low")
    return frame


def _write(frame, folder, n_files=5, row_group=37):
    """``frame`` cut into ``n_files`` Parquet files of row groups of ``row_group`` rows, in order."""
    os.makedirs(folder, exist_ok=True)
    for i, part in enumerate(np.array_split(np.arange(len(frame)), n_files)):
        table = pa.Table.from_pandas(frame.iloc[part], preserve_index=False)
        pq.write_table(table, os.path.join(folder, f"part-{i:03d}.parquet"), row_group_size=row_group)
    return str(folder)


# ---------------------------------------------------------------- reading


def test_a_dataset_lists_every_row_group_of_every_file_with_its_rows(tmp_path):
    frame = _frame()
    source = open_dataset(_write(frame, tmp_path / "d"), target="y")
    assert source.n_rows == len(frame)
    assert len(source.pieces) == sum(-(-len(p) // 37) for p in np.array_split(np.arange(len(frame)), 5))
    assert source.names == [c for c in frame.columns if c != "y"]
    assert source.kinds["city"] == "categorical" and source.kinds["flag"] == "boolean"
    read = pd.concat([f for p in source.pieces for _, f in source.batches(p)], ignore_index=True)
    pd.testing.assert_frame_equal(read, frame[[*source.names, "y"]], check_dtype=False)


def test_a_list_of_files_and_a_pyarrow_dataset_are_datasets_too(tmp_path):
    import pyarrow.dataset as ds

    frame = _frame(n=120)
    folder = _write(frame, tmp_path / "d", n_files=3)
    files = sorted(str(p) for p in (tmp_path / "d").iterdir())
    assert open_dataset(files[:2], target="y").n_rows == 80
    assert open_dataset(ds.dataset(folder, format="parquet"), target="y").n_rows == 120
    with pytest.raises(DataError, match="streams datasets of Parquet files"):
        open_dataset(ds.dataset(pa.Table.from_pandas(frame)), target="y")


def test_raw_frame_gives_what_raw_inputs_gives_for_a_table():
    frame = pd.DataFrame(
        {
            "n": [1.5, np.nan, -2.0, 4.0],
            "i": pd.array([1, None, 3, 4], dtype="Int64"),
            "s": pd.array(["a", None, "", "b"], dtype="string"),
            "c": pd.Categorical(["x", "y", None, "x"]),
            "o": pd.Series([True, None, False, True], dtype=object),
        }
    )
    table = as_table(frame)
    encoding = ColumnEncoding.fit(table)
    fast, slow = encoding.raw_frame(frame), encoding.raw_inputs(table)
    assert fast.keys() == slow.keys()
    for name in fast:
        np.testing.assert_array_equal(fast[name], slow[name], err_msg=name)


@pytest.mark.parametrize("scaling, city", [("robust", "str"), ("standard", "category")])
def test_the_streamed_encoding_equals_the_in_memory_one_on_the_same_rows(tmp_path, scaling, city):
    frame = _frame(n=900)
    frame.loc[len(frame) - 1, "city"] = "zurich"  # only in the last file: after any sample, still a category
    frame["city"] = frame["city"].astype(city)  # a category column is a dictionary in the files
    source = open_dataset(_write(frame.drop(columns="label"), tmp_path / "d", n_files=7, row_group=50), target="y")
    found = scan(source, classes=False, scaling=scaling, validation=np.arange(5), seed=0)
    streamed = ColumnEncoding.from_statistics(found.statistics, scaling=scaling)
    X = frame.drop(columns=["y", "label"])
    in_memory = ColumnEncoding.fit(as_table(X), scaling=scaling)
    assert "city=zurich" in streamed.features
    assert streamed.features == in_memory.features
    for s, m in zip(streamed.columns, in_memory.columns):
        assert (s.name, s.kind, s.categories, s.missing_indicator, s.infrequent) == (
            m.name, m.kind, m.categories, m.missing_indicator, m.infrequent,
        )  # fmt: skip
        for key in ("mean", "scale", "lower", "upper", "clip"):
            expected = getattr(m, key)
            assert getattr(s, key) == (expected if expected is None else pytest.approx(expected, rel=1e-12)), key
    np.testing.assert_allclose(
        streamed.encode(streamed.raw_frame(X)), in_memory.encode(in_memory.raw_inputs(as_table(X))), atol=1e-6
    )
    assert found.missing == {"b": int(frame["b"].isna().sum())}


def test_a_dataset_of_categorical_columns_alone_is_scanned_with_robust_scaling(tmp_path):
    frame = _frame(n=200)[["city", "y"]]
    source = open_dataset(_write(frame, tmp_path / "d", n_files=2), target="y")
    found = scan(source, classes=False, scaling="robust", validation=np.arange(3), seed=0)
    assert dict(found.statistics["city"].counts) == frame["city"].value_counts().to_dict()


def test_the_scoring_sample_is_stratified_and_the_validation_rows_are_held(tmp_path):
    frame = _frame(n=30_000)
    frame["label"] = np.where(np.arange(len(frame)) % 100 == 0, "rare", frame["label"])  # 1% of the rows
    source = open_dataset(_write(frame, tmp_path / "d", n_files=3, row_group=4000), target="label")
    val = validation_positions(source.n_rows, 0.2, seed=1)
    found = scan(source, classes=True, scaling="robust", validation=val, seed=0)
    assert len(found.sample) == pytest.approx(10_000, abs=5)
    share = (found.sample_y == "rare").mean()
    assert share == pytest.approx(0.01, abs=0.0015)
    np.testing.assert_array_equal(found.validation_positions, val)
    np.testing.assert_array_equal(found.validation_y, frame["label"].to_numpy()[val])
    pd.testing.assert_frame_equal(
        found.validation.reset_index(drop=True),
        frame.drop(columns="label").iloc[val].reset_index(drop=True),
        check_dtype=False,
    )


def test_the_streamed_pipeline_trains_on_every_training_row_once_per_epoch_and_never_a_validation_row(tmp_path):
    from archguide.estimators._streaming import StreamedRows

    frame = _frame(n=500)
    frame["y"] = np.arange(len(frame), dtype=float)  # the target is the row's position
    source = open_dataset(_write(frame, tmp_path / "d", n_files=4, row_group=23), target="y")
    found = scan(source, classes=False, scaling="robust", validation=np.arange(0), seed=0)
    encoding = ColumnEncoding.from_statistics(found.statistics, scaling="robust")
    val = validation_positions(len(frame), 0.2, seed=3)
    rows = StreamedRows(
        source, encoding, lambda v: np.asarray(v, dtype=np.float32), False, val, (None, np.zeros(1, np.float32))
    )
    arguments = rows.fit_arguments(batch_size=16, seed=0)
    assert arguments["steps_per_epoch"] == -(-(len(frame) - len(val)) // 16)
    batches = iter(arguments["x"])
    epochs = [np.concatenate([next(batches)[1].numpy() for _ in range(arguments["steps_per_epoch"])]) for _ in range(3)]
    training = np.setdiff1d(np.arange(len(frame)), val)
    for seen in epochs:
        np.testing.assert_array_equal(np.sort(seen), training)  # every training row once, no validation row
    assert not np.array_equal(epochs[0], epochs[1]) and not np.array_equal(epochs[1], epochs[2])
    features, _ = next(iter(arguments["x"]))
    assert features.shape == (16, len(encoding.features))


# ---------------------------------------------------------------- fit, save, load, predict


@pytest.fixture(scope="module")
def parquet_fit(tmp_path_factory):
    folder = tmp_path_factory.mktemp("streamed")
    frame = _frame()
    data = _write(frame.drop(columns="label"), folder / "data")
    est = ag.ImportanceGuidedRegressor(epochs=4, random_state=0).fit(data, target="y")
    return est, frame, data, folder


def test_a_streamed_fit_scores_and_plans_as_the_estimator_does(parquet_fit):
    est, frame, _, _ = parquet_fit
    assert est.n_features_in_ == 6 and list(est.feature_names_in_) == ["a", "b", "count", "city", "flag", "noise"]
    importances = est.scores_.importances
    assert importances["a"] > importances["noise"] and est.scores_.weak["noise"]
    assert len(est.validation_indices_) == 120 and est.validation_indices_.max() < len(frame)
    # early stopping (patience 20) cannot end a 4-epoch segment: each plan trains exactly 4 streamed epochs
    assert est.n_epochs_ == 4 * len(est.plans_) and len(est.history_["val_data_loss"]) == est.n_epochs_
    assert est.target_mean_ == pytest.approx(frame["y"].mean())
    assert est.target_scale_ == pytest.approx(frame["y"].std(ddof=0))


def test_streamed_predictions_agree_with_the_frame_the_saved_model_and_the_written_file(parquet_fit):
    est, frame, data, folder = parquet_fit
    X = frame.drop(columns=["y", "label"])
    from_files = est.predict(data)
    np.testing.assert_array_equal(from_files, est.predict(X[list(reversed(X.columns))]))
    assert np.mean((from_files - frame["y"]) ** 2) < 0.5 * frame["y"].var()
    est.save(folder / "model.keras")
    loaded = ag.load(folder / "model.keras")
    np.testing.assert_array_equal(loaded.predict(data), from_files)
    assert ag.write_predictions(loaded, data, folder / "preds.parquet") == len(frame)
    np.testing.assert_array_equal(pd.read_parquet(folder / "preds.parquet")["prediction"], from_files)
    assert ag.write_predictions(loaded, data, folder / "preds.csv", id_column="noise") == len(frame)
    written = pd.read_csv(folder / "preds.csv")
    assert list(written.columns) == ["noise", "prediction"]
    np.testing.assert_allclose(written["prediction"], from_files, rtol=1e-12)


def test_a_dask_frame_fits_a_classifier_with_string_labels_and_a_dask_series(tmp_path):
    frame = _frame(n=400)
    X = dd.from_pandas(frame.drop(columns=["y", "label"]), npartitions=6)
    labels = frame["label"].copy()
    labels.index = labels.index + 1000  # an odd index: matched by partition, not by label
    y = dd.from_pandas(labels.to_frame(), npartitions=6)["label"]
    y = y.clear_divisions() if hasattr(y, "clear_divisions") else y
    X = X.clear_divisions() if hasattr(X, "clear_divisions") else X
    est = ag.ImportanceGuidedClassifier(epochs=3, random_state=0).fit(X, y)
    assert list(est.classes_) == ["high", "low"]
    proba = est.predict_proba(X)
    assert proba.shape == (400, 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert (est.predict(X) == frame["label"].to_numpy()).mean() > 0.75
    assert ag.write_predictions(est, X, tmp_path / "p.parquet") == 400
    written = pd.read_parquet(tmp_path / "p.parquet")
    assert list(written.columns) == ["prediction", "proba_high", "proba_low"]
    np.testing.assert_array_equal(written[["proba_high", "proba_low"]].to_numpy(), proba)
    by_name = ag.ImportanceGuidedClassifier(epochs=3, random_state=0).fit(
        dd.from_pandas(frame.drop(columns=["y"]), npartitions=6), "label"
    )
    assert by_name.n_features_in_ == 6


def test_a_streamed_multiclass_fit_with_integer_labels_and_a_refit(tmp_path):
    frame = _frame(n=450)
    frame["k"] = pd.cut(frame["y"], 3, labels=False).astype("int64")
    data = _write(frame.drop(columns=["y", "label"]), tmp_path / "d", n_files=3, row_group=40)
    est = ag.ImportanceGuidedClassifier(epochs=3, refit=True, random_state=0).fit(data, target="k")
    assert list(est.classes_) == [0, 1, 2] and est.refit_history_ is not None
    assert est.predict_proba(data).shape == (450, 3)


# ---------------------------------------------------------------- bad input


def test_files_whose_schemas_disagree_name_the_file_and_the_column(tmp_path):
    frame = _frame(n=100)
    folder = _write(frame, tmp_path / "d", n_files=2)
    pq.write_table(
        pa.Table.from_pandas(frame.drop(columns="noise"), preserve_index=False), f"{folder}/part-009.parquet"
    )
    with pytest.raises(DataError, match=r"part-009.parquet.*lacks 'noise'"):
        open_dataset(folder, target="y")


def test_a_target_missing_from_some_files_names_them(tmp_path):
    frame = _frame(n=100)
    folder = _write(frame.drop(columns="y"), tmp_path / "d", n_files=2)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), f"{folder}/part-000.parquet")
    with pytest.raises(DataError, match=r"target column 'y' is missing from .*part-001.parquet"):
        ag.ImportanceGuidedRegressor().fit(folder, target="y")


def test_a_column_whose_type_changes_between_files_is_named(tmp_path):
    frame = _frame(n=100)
    folder = _write(frame, tmp_path / "d", n_files=2)
    changed = frame.assign(count=frame["count"].astype(str))
    pq.write_table(pa.Table.from_pandas(changed, preserve_index=False), f"{folder}/part-001.parquet")
    with pytest.raises(DataError, match=r"column 'count' changes type between files: int64 in .*part-000.*string"):
        ag.ImportanceGuidedRegressor().fit(folder, target="y")


def test_an_empty_dataset_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty dataset"):
        ag.ImportanceGuidedRegressor().fit(str(tmp_path / "empty"), target="y")
    pq.write_table(pa.Table.from_pandas(_frame(n=5).iloc[:0], preserve_index=False), tmp_path / "none.parquet")
    with pytest.raises(DataError, match="hold no rows"):
        ag.ImportanceGuidedRegressor().fit(str(tmp_path / "none.parquet"), target="y")
    with pytest.raises(DataError, match="does not exist"):
        ag.ImportanceGuidedRegressor().fit(str(tmp_path / "nowhere"), target="y")
    with pytest.raises(DataError, match="not a file"):
        ag.ImportanceGuidedRegressor().fit([str(tmp_path / "nowhere.parquet")], target="y")


def test_a_dataset_that_changes_while_it_is_read_says_so(tmp_path, monkeypatch):
    import archguide.estimators._streaming as streaming

    frame = _frame(n=300)
    folder = _write(frame, tmp_path / "d", n_files=3)
    real_scan = streaming.scan

    def scan_then_rewrite(*args, **kwargs):  # the file changes between the pass and the training
        found = real_scan(*args, **kwargs)
        time.sleep(0.01)
        pq.write_table(pa.Table.from_pandas(frame.iloc[:50], preserve_index=False), f"{folder}/part-002.parquet")
        return found

    monkeypatch.setattr(streaming, "scan", scan_then_rewrite)
    with pytest.raises(DataError, match=r"changed while it was read: file .*part-002.parquet.* was rewritten"):
        ag.ImportanceGuidedRegressor(epochs=2, random_state=0).fit(folder, target="y")


def test_bad_values_inside_a_file_name_the_column_and_the_file(tmp_path):
    frame = _frame(n=200)
    frame.loc[150, "a"] = np.inf
    folder = _write(frame, tmp_path / "d", n_files=2)
    with pytest.raises(DataError, match=r"'a'.*infinite.*part-001.parquet"):
        ag.ImportanceGuidedRegressor().fit(folder, target="y")
    frame = _frame(n=200)
    frame.loc[120, "y"] = np.nan
    folder = _write(frame, tmp_path / "e", n_files=2)
    with pytest.raises(DataError, match=r"target 'y' has 1 missing values in file .*part-001.*rows \[120\]"):
        ag.ImportanceGuidedRegressor().fit(folder, target="y")
    with pytest.raises(DataError, match="needs numbers"):
        ag.ImportanceGuidedRegressor().fit(_write(_frame(n=100), tmp_path / "f"), target="label")


def test_the_target_and_the_arguments_are_checked(tmp_path):
    folder = _write(_frame(n=100), tmp_path / "d")
    with pytest.raises(DataError, match="fit needs the target"):
        ag.ImportanceGuidedRegressor().fit(folder)
    with pytest.raises(DataError, match="target= names the target column of a dataset"):
        ag.ImportanceGuidedRegressor().fit(_frame(n=100), target="y")
    with pytest.raises(DataError, match="tune takes a table in memory"):
        ag.ImportanceGuidedRegressor().tune(folder, "y")
    frame = _frame(n=100)
    X = dd.from_pandas(frame.drop(columns=["y", "label"]), npartitions=4)
    with pytest.raises(DataError, match="same partitions"):
        ag.ImportanceGuidedRegressor().fit(X, dd.from_pandas(frame["y"], npartitions=3))


def test_a_streamed_run_is_saved_from_its_own_pass_and_an_in_memory_one_needs_its_data(parquet_fit, tmp_path):
    est, frame, _, _ = parquet_fit
    import json

    run = ag.save_run(est, tmp_path / "run", X=None, y=None)
    data = json.loads((run / "run.json").read_text())["data"]
    assert data["rows"] == len(frame) and data["kinds"] == {"boolean": 1, "categorical": 1, "numeric": 4}
    assert data["target"]["mean"] == pytest.approx(frame["y"].mean())
    assert data["missing"] == {"b": int(frame["b"].isna().sum())}
    in_memory = ag.ImportanceGuidedRegressor(epochs=2, random_state=0).fit(frame[["a", "noise"]], frame["y"])
    with pytest.raises(ag.ConfigError, match="save_run needs X and y"):
        ag.save_run(in_memory, tmp_path / "run2", X=None, y=None)


def test_predicting_a_dataset_without_a_model_column_names_it(parquet_fit, tmp_path):
    est, frame, _, _ = parquet_fit
    folder = _write(frame.drop(columns=["city"]), tmp_path / "d", n_files=2)
    with pytest.raises(DataError, match=r"lacks 'city'"):
        est.predict(folder)


def test_nothing_the_user_passed_is_modified(tmp_path):
    frame = _frame(n=200)
    folder = _write(frame, tmp_path / "d", n_files=2)
    before = {p: (os.stat(p).st_mtime_ns, open(p, "rb").read()) for p in sorted(map(str, (tmp_path / "d").iterdir()))}
    ddf = dd.from_pandas(frame.drop(columns="label"), npartitions=3)
    copy = ddf.compute()
    ag.ImportanceGuidedRegressor(epochs=2, random_state=0).fit(folder, target="y")
    ag.ImportanceGuidedRegressor(epochs=2, random_state=0).fit(ddf, "y")
    after = {p: (os.stat(p).st_mtime_ns, open(p, "rb").read()) for p in sorted(map(str, (tmp_path / "d").iterdir()))}
    assert before == after
    pd.testing.assert_frame_equal(ddf.compute(), copy)


# ---------------------------------------------------------------- command line


def test_the_command_line_fits_and_predicts_a_directory_streamed(tmp_path, capsys):
    from archguide.cli import main

    frame = _frame(n=300)
    frame["row"] = np.arange(len(frame))
    data = _write(frame.drop(columns="label"), tmp_path / "data", n_files=3)
    out = tmp_path / "run"
    args = ["fit", data, "--target", "y", "--out", str(out), "--set", "training.epochs=3", "--set", "data.id=row"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "300 rows x 6 columns" in printed and "streamed" in printed
    assert (out / "model.keras").exists() and (out / "report.html").exists()
    import json

    run = json.loads((out / "run.json").read_text())
    assert run["data"]["rows"] == 300 and run["data"]["missing"] == {"b": int(frame["b"].isna().sum())}
    preds = tmp_path / "preds.parquet"
    assert main(["predict", str(out / "model.keras"), data, "--out", str(preds)]) == 0
    written = pd.read_parquet(preds)
    assert list(written.columns) == ["row", "prediction"]  # the run's data.id, first
    np.testing.assert_array_equal(written["row"], frame["row"])
    features = frame[["a", "b", "count", "city", "flag", "noise"]]
    np.testing.assert_array_equal(written["prediction"], ag.load(out / "model.keras").predict(features))
    assert main(["tune", data, "--target", "y", "--out", str(tmp_path / "t")]) == 1
    assert "tune takes a data file" in capsys.readouterr().err
    assert main(["fit", data, "--target", "Y", "--out", str(tmp_path / "u")]) == 1
    assert "--target names 'Y', which is not a column of" in capsys.readouterr().err
