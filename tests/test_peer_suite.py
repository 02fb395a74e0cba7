"""The peer suite's own pieces (benchmarks/peers.py): a peer that is absent gets a row saying so,
encoded columns map back to the user's columns, the Markdown it writes is a table."""

import importlib.util
import json
from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from benchmarks import peers


def test_an_absent_peer_gets_a_row_that_says_so(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "lassonet" else real(name, *a))
    monkeypatch.setitem(peers.QUICK_SIZES, peers.friedman, {"n_rows": 200, "n_features": 8})
    results = peers.run_table([peers.friedman], ["LassoNet", "HistGradientBoosting"], (0,), quick=True, log=str)
    table = peers.frame(results, (0,))
    assert list(table["model"]) == ["LassoNet", "HistGradientBoosting"]
    assert table.loc[0, "status"] == "not installed (pip install lassonet)"
    assert table.loc[1, "status"] == "" and float(table.loc[1, "R²"].split(" ")[0]) > 0.3


def test_encoded_columns_map_back_to_their_source():
    X = pd.DataFrame({"b": [1.0, 2.0, 3.0, 4.0], "a": pd.Categorical(["u", "v", "w", "u"]), "c": [0.0, 1, 0, 1]})
    encoder = peers._encoder().fit(X)
    sources = peers._sources(encoder)
    assert sources == ["a", "a", "a", "b", "c"] and len(sources) == encoder.transform(X).shape[1]
    ranking = peers._by_source([0.1, 0.7, 0.2, 0.5, 0.0], sources, X.columns)
    assert list(ranking.index) == ["b", "a", "c"] and ranking["a"] == 0.7  # a column's best level


def test_markdown_is_a_pipe_table():
    text = peers.markdown(pd.DataFrame({"model": ["x", "longer name"], "MSE": ["1.0", "2.5"]}))
    lines = text.splitlines()
    assert lines[0].startswith("| model") and set(lines[1]) <= {"|", "-"}
    assert len({len(line) for line in lines}) == 1 and len(lines) == 4
    assert np.all([line.count("|") == 3 for line in lines])


def test_the_summary_gathers_every_table_run_so_far(tmp_path):
    """A table run alone (--tables) replaces its own part of peers.md and peers.png, not the others'."""
    ours = peers.Result("F", "archguide default", "regression", {"test MSE": [1.2, 1.3]}, [20.0, 22.0], 9000)
    plain = peers.Result("C", "plain MLP 64-32", "classification", {"accuracy": [0.8]}, [5.0], 5000)
    for name, result in (("friedman", ours), ("classification", plain)):
        (tmp_path / f"{name}.md").write_text(f"## {name}\n")
        (tmp_path / f"{name}.json").write_text(json.dumps([asdict(result)]))
    (tmp_path / "cost.md").write_text("## cost\n")
    (tmp_path / "cost.json").write_text(json.dumps([{"rows": 1000, "model": "archguide default", "seconds": 6.0}]))
    peers.write_summary(tmp_path, "# header")
    text = (tmp_path / "peers.md").read_text()
    assert text.index("## friedman") < text.index("## classification") < text.index("## cost")
    assert (tmp_path / "peers.png").stat().st_size > 10_000


def test_a_data_set_run_alone_keeps_the_tables_other_data_sets(tmp_path):
    """--data reruns one data set of a table; the table's other data sets keep their saved results."""
    pytest.importorskip("statsmodels")
    diamonds = "diamonds (10,000 rows) + noise"
    saved = peers.Result(diamonds, "HistGradientBoosting", "regression", {"test MSE": [0.5]}, [1.0])
    (tmp_path / "real.json").write_text(json.dumps([asdict(saved)]))
    peers.main(["--tables", "real", "--data", "affairs", "--models", "HistGradientBoosting", "--seeds", "0",
                "--out", str(tmp_path)])  # fmt: skip
    results = json.loads((tmp_path / "real.json").read_text())
    assert [r["data"] for r in results] == [diamonds, "affairs (6,366 rows) + noise"]
    assert results[0]["metrics"] == {"test MSE": [0.5]} and results[1]["metrics"]["accuracy"][0] > 0.6
    text = (tmp_path / "real.md").read_text()
    assert diamonds in text and "affairs (6,366 rows) + noise" in text
    assert "for affairs, HistGradientBoosting; the table's other rows as saved before" in text


def test_rebuild_rewrites_the_tables_from_the_saved_results_without_running_anything(tmp_path, monkeypatch):
    monkeypatch.setattr(peers, "run_table", lambda *a, **k: pytest.fail("--rebuild must not run a model"))
    ours = peers.Result("Friedman #1", "archguide default", "regression", {"test MSE": [1.25, 1.5]}, [3.0, 4.0])
    (tmp_path / "friedman.json").write_text(json.dumps([asdict(ours)]))
    peers.main(["--rebuild", "--out", str(tmp_path)])
    text = (tmp_path / "friedman.md").read_text()
    assert "1.375 ± 0.125" in text and "1.250 1.500" in text
    assert "(rebuilt from friedman.json)" in text
    assert not (tmp_path / "classification.md").exists() and not (tmp_path / "cost.md").exists()
    assert (tmp_path / "peers.png").exists()


def test_a_model_run_alone_keeps_the_other_models_rows(tmp_path):
    """--models adds or replaces its own rows of a table (an ablation row, say); the other rows stay."""
    pytest.importorskip("sklearn")
    wine = "wine (178 rows)"
    saved = [
        peers.Result(wine, "CatBoost", "classification", {"accuracy": [0.9], "log loss": [0.3]}, [1.0]),
        peers.Result(wine, "HistGradientBoosting", "classification", {"accuracy": [0.1], "log loss": [9.0]}, [1.0]),
    ]
    (tmp_path / "suite.json").write_text(json.dumps([asdict(r) for r in saved]))
    peers.main(["--tables", "suite", "--data", "wine", "--models", "HistGradientBoosting", "--seeds", "0",
                "--out", str(tmp_path)])  # fmt: skip
    results = {r["model"]: r for r in json.loads((tmp_path / "suite.json").read_text())}
    assert results["CatBoost"]["metrics"]["log loss"] == [0.3]  # kept as saved
    assert results["HistGradientBoosting"]["metrics"]["log loss"][0] < 1.0  # run again
    assert "Summary" in (tmp_path / "suite.md").read_text()


def test_the_suite_summary_ranks_models_by_error_relative_to_the_best():
    def result(data, model, task, errors):
        metric = "test MSE" if task == "regression" else "log loss"
        return peers.Result(data, model, task, {metric: errors}, [1.0] * len(errors))

    results = [
        result("a", "best everywhere", "regression", [1.0, 1.0]),
        result("a", "twice", "regression", [2.0, 2.0]),
        result("a", "failed", "regression", []),
        result("b", "best everywhere", "classification", [0.1]),
        result("b", "twice", "classification", [0.2]),
        result("b", "failed", "classification", []),
    ]
    results[2].status = results[5].status = "failed: ValueError"
    summary, ratios = peers.suite_summary(results)
    assert list(summary.index) == ["best everywhere", "twice"]  # a model that never ran is not ranked
    assert summary.loc["best everywhere", "mean rank"] == 1 and summary.loc["twice", "mean rank"] == 2
    assert summary.loc["twice", "error / best (geometric mean)"] == pytest.approx(2.0)
    assert ratios.loc["twice"].tolist() == pytest.approx([2.0, 2.0])
    lines = peers._suite_targets("suite_noise", [*results, result("a", "archguide default", "regression", [1.5])])
    assert any("best mean rank of all rows" in line and "MISSED" in line for line in lines)


@pytest.mark.parametrize("loader", peers.SUITE, ids=lambda loader: loader.__name__)
def test_every_suite_table_loads_as_published_and_with_noise(loader):
    for package in ("plotnine", "statsmodels"):
        pytest.importorskip(package)
    published, noisy = loader(0, noise=False), loader(0)
    assert len(published.X) == len(published.y) >= 150 and not pd.isna(published.y).any()
    assert published.task in ("regression", "classification")
    assert list(noisy.X.columns) == [*published.X.columns, *[f"noise{i}" for i in range(10)], "noise_level"]
    for column in published.X.columns:  # numbers or pandas categories, nothing else
        dtype = published.X[column].dtype
        assert pd.api.types.is_numeric_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype), column


@pytest.mark.parametrize("model", ["CatBoost", "LightGBM"])
def test_the_boosting_peers_fit_categories_and_gaps(model):
    pytest.importorskip(model.lower())
    pytest.importorskip("plotnine")
    data = peers.penguins(0)  # two categories with gaps, gaps in numbers, three string classes
    fit, _ = peers.MODELS[model]
    X_train, X_test, y_train, y_test = train_test_split(data.X, data.y, test_size=0.25, random_state=0)
    fitted = fit(X_train, y_train, "classification", 0)
    scores = peers._scores(data, fitted, X_test, y_test)
    assert scores["accuracy"] > 0.9 and scores["log loss"] < 0.5
