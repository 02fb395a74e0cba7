"""Odd values and odd arguments: refused with a clear message that names them, never clipped or mangled."""

import json
import warnings
import zipfile

import numpy as np
import pandas as pd
import pytest

import archguide as ag
from archguide.estimators.preprocessing import ColumnEncoding
from archguide.exceptions import ConfigError, DataError
from archguide.schema import as_table


def _frame(n=200, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"a": rng.standard_normal(n), "b": rng.standard_normal(n)})


@pytest.fixture(scope="module")
def fitted():
    frame = _frame()
    y = 2 * frame["a"] + 0.1 * frame["b"]
    return ag.ImportanceGuidedRegressor(epochs=2, random_state=0).fit(frame, y), frame


@pytest.mark.parametrize("value", [1e300, 1e39, -5e38])
def test_values_beyond_float32_are_refused_at_fit_and_predict_naming_the_column(fitted, value):
    est, frame = fitted
    odd = frame.copy()
    odd.loc[3, "b"] = value
    for call in (lambda: est.predict(odd), lambda: ag.ImportanceGuidedRegressor(epochs=1).fit(odd, frame["a"])):
        with pytest.raises(DataError, match=r"Columns 'b' of X hold values beyond the float32 range"):
            call()
    with pytest.raises(DataError, match="beyond the float32 range"):  # an array too
        as_table(odd.to_numpy())
    odd.loc[3, "b"] = 3e38  # within the range: taken
    assert as_table(odd).kinds["b"] == "numeric"


def test_an_infinite_value_is_still_called_infinite():
    odd = _frame()
    odd.loc[0, "a"] = np.inf
    with pytest.raises(DataError, match="Columns 'a' of X contain infinite values"):
        as_table(odd)


def test_large_values_with_small_differences_keep_their_resolution():
    rng = np.random.default_rng(0)
    seconds = 1.7e9 + rng.integers(0, 100, size=500).astype(np.float64)  # a timestamp column, to the second
    frame = pd.DataFrame({"t": seconds})
    encoding = ColumnEncoding.fit(as_table(frame))
    column = encoding.columns[0]
    assert column.mean == pytest.approx(seconds.mean(), abs=1e-6)
    assert column.scale == pytest.approx(seconds.std(), rel=1e-9)
    encoded = encoding.encode(encoding.raw_inputs(as_table(frame)))[:, 0]
    # float32 holds 1.7e9 to 128 s; centred first, each second stays apart
    np.testing.assert_allclose(encoded, (seconds - seconds.mean()) / seconds.std(), atol=1e-5)
    assert len(np.unique(encoded)) == len(np.unique(seconds))


@pytest.mark.parametrize("make", [lambda n: pd.Series(pd.date_range("2020-01-01", periods=n)),
                                  lambda n: pd.date_range("2020-01-01", periods=n).to_numpy(),
                                  lambda n: pd.Series(pd.to_timedelta(np.arange(n), unit="s"))])  # fmt: skip
def test_a_datetime_target_is_refused_as_datetime_columns_are(make):
    frame = _frame()
    for est in (ag.ImportanceGuidedRegressor(epochs=1), ag.ImportanceGuidedClassifier(epochs=1)):
        with pytest.raises(DataError, match=r"y has dtype (datetime64|timedelta64).*Convert it to numbers first"):
            est.fit(frame, make(len(frame)))


def test_messages_about_classes_name_the_users_labels():
    frame = _frame(300)
    labels = np.array(["common"] * 297 + ["rare"] * 3, dtype=object)
    np.random.default_rng(0).shuffle(labels)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ag.ImportanceGuidedClassifier(epochs=1, random_state=0).fit(frame, labels)
    messages = [str(w.message) for w in caught if issubclass(w.category, ag.ArchguideWarning)]
    assert any("classes 'rare' have fewer than" in m for m in messages), messages
    assert not any("classes '1'" in m for m in messages)


def test_any_string_is_a_category_and_names_stay_apart():
    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame(
        {
            "a/b": rng.standard_normal(n),
            "a_b": rng.standard_normal(n),
            "cat": rng.choice(["", "[UNK]", "x", "\ue000y"], n),
        }
    )
    frame.loc[:9, "cat"] = None  # missing: not the same as the category ""
    y = frame["a/b"] + 3.0 * (frame["cat"] == "") - 3.0 * (frame["cat"] == "[UNK]")
    est = ag.ImportanceGuidedRegressor(epochs=30, random_state=0).fit(frame, y)
    assert est.encoding_.features == ("a/b", "a_b", "cat=", "cat=[UNK]", "cat=x", "cat=\ue000y", "cat=<missing>")
    raw = est.encoding_.raw_inputs(as_table(frame))
    encoded = est.encoding_.encode(raw)
    one_hot = pd.DataFrame(encoded[:, 2:], columns=est.encoding_.features[2:])
    for label, feature in [("", "cat="), ("[UNK]", "cat=[UNK]"), ("x", "cat=x"), ("\ue000y", "cat=\ue000y")]:
        rows = (frame["cat"] == label).to_numpy()
        assert (one_hot.loc[rows, feature] == 1).all() and (one_hot.loc[rows].sum(axis=1) == 1).all()
    assert (one_hot.loc[:9, "cat=<missing>"] == 1).all() and (one_hot.loc[:9].sum(axis=1) == 1).all()
    unseen = frame.iloc[10:12].assign(cat="never seen")
    assert (est.encoding_.encode(est.encoding_.raw_inputs(as_table(unseen)))[:, 2:] == 0).all()
    pred = pd.Series(est.predict(frame))
    assert pred[frame["cat"] == ""].mean() > pred[frame["cat"] == "[UNK]"].mean() + 2  # learned apart


def test_a_damaged_artifact_is_a_data_error_that_says_so(fitted, tmp_path):
    est, _ = fitted
    path = tmp_path / "m.keras"
    est.save(path)
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(files["config.json"])
    damaged = json.dumps(config).replace('"encoding": {"columns"', '"encoding": {"kolumns"')
    assert damaged != json.dumps(config)
    for name, keep in [("config.keras", lambda k: True), ("weights.keras", lambda k: "weights" not in k)]:
        with zipfile.ZipFile(tmp_path / name, "w") as archive:
            for key, content in files.items():
                if keep(key):
                    archive.writestr(key, damaged if (key == "config.json" and name == "config.keras") else content)
        with pytest.raises(DataError, match=rf"'{tmp_path / name}' is damaged"):
            ag.load(tmp_path / name)


def test_planning_arguments_of_the_wrong_kind_say_what_was_expected():
    with pytest.raises(ConfigError, match="expected a FeatureScores .* Received: dict"):
        ag.plan_architecture({"a": 1})
    with pytest.raises(DataError, match="from_yaml: the text is not valid YAML"):
        ag.ArchitecturePlan.from_yaml("- [unclosed")
    with pytest.raises(DataError, match="expects a mapping .* Received: list"):
        ag.ArchitecturePlan.from_yaml("- a\n- b\n")
    with pytest.raises(DataError, match="malformed value"):
        ag.ArchitecturePlan.from_dict({"features": ["a"], "branches": [{"name": "b"}], "l1_strengths": {},
                                       "head_units": [4]})  # fmt: skip


def test_argument_messages_show_what_came_and_agree_on_ranges():
    frame = _frame()
    with pytest.raises(ConfigError, match=r"head_units, expected a positive integer or a list of them. "
                                          r"Received: head_units='abc'"):  # fmt: skip
        ag.ImportanceGuidedRegressor(head_units="abc").fit(frame, frame["a"])
    plan = ag.plan_architecture(ag.score_features(frame, frame["a"], random_state=0), total_units=8)
    for value in (1.0, 2.0, -0.1):
        messages = set()
        for call in (lambda v=value: ag.ImportanceGuidedRegressor(dropout=v).fit(frame, frame["a"]),
                     lambda v=value: ag.build_model(plan, dropout=v)):  # fmt: skip
            with pytest.raises(ConfigError, match=r"dropout, expected a number in \[0.0, 1.0\)") as info:
                call()
            messages.add(str(info.value))
        assert len(messages) == 1


def test_a_one_feature_fit_leaks_no_scipy_warning():
    frame = _frame()[["a"]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # SciPy's SmallSampleWarning from a one-feature ranking among them
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=ag.ArchguideWarning)
        ag.ImportanceGuidedRegressor(epochs=3, random_state=0).fit(frame, 2 * frame["a"])
