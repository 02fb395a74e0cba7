"""In-model preprocessing: the encoding fitted on a table, and the layers that apply it."""

import numpy as np
import pandas as pd
import pytest

from archguide.estimators.preprocessing import CategoryEncoder, ColumnEncoding, NumericEncoder
from archguide.exceptions import ConfigError, DataError
from archguide.schema import as_table

keras = pytest.importorskip("keras")


def _encode(encoding, table):
    return encoding.encode(encoding.raw_inputs(table), batch_size=3)  # blocks of 3 rows: the seams too


def test_numeric_encoder_standardises_and_flags_missing_values():
    layer = NumericEncoder(mean=2.0, scale=4.0, missing_indicator=True)
    out = keras.ops.convert_to_numpy(layer(np.array([[2.0], [10.0], [np.nan]], dtype="float32")))
    np.testing.assert_array_equal(out, [[0.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
    plain = NumericEncoder(mean=0.0, scale=1.0)
    assert keras.ops.convert_to_numpy(plain(np.array([True, False]))).tolist() == [[1.0], [0.0]]


def test_category_encoder_one_hot_unseen_is_zero_and_empty_is_missing():
    layer = CategoryEncoder(["lyon", "paris"], missing_indicator=True)
    out = keras.ops.convert_to_numpy(layer(np.array(["paris", "berlin", "", "lyon"], dtype=object)))
    np.testing.assert_array_equal(out, [[0, 1, 0], [0, 0, 0], [0, 0, 1], [1, 0, 0]])
    again = CategoryEncoder.from_config(layer.get_config())
    assert again.vocabulary == ["lyon", "paris"] and again.missing_indicator
    plain = CategoryEncoder(["lyon", "paris"])  # no flag: unseen and missing labels are both all zeros
    out = keras.ops.convert_to_numpy(plain(np.array(["paris", "berlin", "", "lyon"], dtype=object)))
    np.testing.assert_array_equal(out, [[0, 1], [0, 0], [0, 0], [1, 0]])


def test_the_encoding_names_features_after_columns_and_groups_them():
    frame = pd.DataFrame(
        {
            "age": [30.0, np.nan, 50.0, 40.0],
            "city": ["paris", "lyon", None, "paris"],
            "member": [True, False, True, True],
            "age=<missing>": [1.0, 2.0, 3.0, 4.0],  # a column that happens to carry a generated name
        }
    )
    encoding = ColumnEncoding.fit(as_table(frame))
    assert encoding.features == (
        "age",
        "age=<missing>_2",
        "city=lyon",
        "city=paris",
        "city=<missing>",
        "member",
        "age=<missing>",
    )
    assert encoding.groups["city"] == ["city=lyon", "city=paris", "city=<missing>"]
    out = _encode(encoding, as_table(frame))
    np.testing.assert_allclose(out[:, 0], [-1.224745, 0.0, 1.224745, 0.0], rtol=1e-5)  # mean 40, the gap at 0
    np.testing.assert_array_equal(out[:, 1], [0, 1, 0, 0])
    np.testing.assert_array_equal(out[:, 2:5], [[0, 1, 0], [1, 0, 0], [0, 0, 1], [0, 1, 0]])
    assert ColumnEncoding.from_dict(encoding.to_dict()) == encoding


def _cities():
    # paris 5 rows, lyon 3, metz and nice 1 each, one gap: 11 rows
    labels = ["paris"] * 5 + ["lyon"] * 3 + ["nice", "metz", None]
    return pd.DataFrame({"city": labels, "x": np.arange(11.0)})


@pytest.mark.parametrize("min_frequency", [2, 0.2])  # a count, and a fraction of the 11 rows (2.2)
def test_rare_categories_share_the_infrequent_feature_and_so_do_unseen_ones(min_frequency):
    encoding = ColumnEncoding.fit(as_table(_cities()), min_frequency=min_frequency)
    assert encoding.groups["city"] == ["city=lyon", "city=paris", "city=<infrequent>", "city=<missing>"]
    assert encoding.columns[0].infrequent == ("metz", "nice")
    new = pd.DataFrame({"city": ["nice", "berlin", None, "paris", "lyon", "metz"], "x": 0.0})
    np.testing.assert_array_equal(
        _encode(encoding, as_table(new))[:, :4],
        [[0, 0, 1, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0]],
    )
    assert ColumnEncoding.from_dict(encoding.to_dict()) == encoding
    # Without pooling, an unseen category sets nothing and every seen one has its own feature.
    whole = ColumnEncoding.fit(as_table(_cities()))
    assert len(whole.groups["city"]) == 5 and _encode(whole, as_table(new))[1, :5].sum() == 0


def test_max_categories_keeps_the_most_frequent_and_bounds_the_width():
    frame = _cities()
    two = ColumnEncoding.fit(as_table(frame), max_categories=2)
    assert two.groups["city"] == ["city=paris", "city=<infrequent>", "city=<missing>"]
    assert two.columns[0].infrequent == ("lyon", "metz", "nice")
    # Already within the bound: the column is left whole (no pooled feature for nothing).
    assert ColumnEncoding.fit(as_table(frame), max_categories=4).groups == ColumnEncoding.fit(as_table(frame)).groups
    # A tie at the bound keeps the earlier category: "v" and "w" have two rows each, room is left for one.
    tied = pd.DataFrame({"c": ["w", "w", "v", "v", "u", "u", "u", "z"]})
    assert ColumnEncoding.fit(as_table(tied), max_categories=3).columns[0].categories == ("u", "v")
    one = ColumnEncoding.fit(as_table(frame), max_categories=1)  # every category shares one feature
    assert one.groups["city"] == ["city=<infrequent>", "city=<missing>"]
    np.testing.assert_array_equal(_encode(one, as_table(frame))[:, :2], [[1, 0]] * 10 + [[0, 1]])
    with_min = ColumnEncoding.fit(as_table(frame), min_frequency=4, max_categories=3)  # both: the stricter wins
    assert with_min.groups["city"] == ["city=paris", "city=<infrequent>", "city=<missing>"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"min_frequency": 0}, "min_frequency, expected a positive integer"),
        ({"min_frequency": 1.0}, r"min_frequency, expected None, a count .* Received: min_frequency=1.0"),
        ({"min_frequency": -0.5}, "min_frequency=-0.5"),
        ({"min_frequency": True}, "min_frequency=True"),
        ({"min_frequency": "5"}, "min_frequency='5'"),
        ({"max_categories": 0}, "max_categories, expected a positive integer or None"),
        ({"max_categories": 2.5}, "max_categories=2.5"),
    ],
)
def test_pooling_options_out_of_range_are_refused(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        ColumnEncoding.fit(as_table(_cities()), **kwargs)


def test_an_encoding_saved_before_pooling_loads_whole():
    data = ColumnEncoding.fit(as_table(_cities())).to_dict()
    for column in data["columns"]:
        del column["infrequent"]
    assert ColumnEncoding.from_dict(data) == ColumnEncoding.fit(as_table(_cities()))
    config = CategoryEncoder(["a", "b"]).get_config()
    assert "infrequent" not in config and not CategoryEncoder.from_config(config).infrequent
    pooled = CategoryEncoder.from_config(CategoryEncoder(["a"], infrequent=True).get_config())
    assert keras.ops.convert_to_numpy(pooled(np.array(["a", "z", ""], dtype=object))).tolist() == [
        [1, 0],
        [0, 1],
        [0, 0],
    ]


def test_a_constant_column_keeps_scale_one_and_raw_inputs_leave_the_frame_alone():
    frame = pd.DataFrame({"k": [5.0, 5.0, 5.0], "c": pd.Series(["a", "b", "a"], dtype="category")})
    before = frame.copy()
    encoding = ColumnEncoding.fit(as_table(frame))
    assert encoding.columns[0].scale == 1.0
    raw = encoding.raw_inputs(as_table(frame))
    assert raw["c"].tolist() == ["a", "b", "a"] and raw["k"].dtype == np.float64  # centred in float64 by the model
    pd.testing.assert_frame_equal(frame, before)


def test_a_column_that_changed_type_is_named():
    encoding = ColumnEncoding.fit(as_table(pd.DataFrame({"n": [1.0, 2.0], "c": ["x", "y"]})))
    with pytest.raises(DataError, match=r"'n' \(numeric at fit, categorical now\), 'c' \(categorical at fit"):
        encoding.check_kinds(as_table(pd.DataFrame({"n": ["1", "2"], "c": [1.0, 2.0]})))
    # Entirely missing, or boolean for numeric, is not a change of type.
    encoding.check_kinds(
        as_table(pd.DataFrame({"n": [True, False], "c": [np.nan, np.nan]}), allow_missing_columns=True)
    )


def test_robust_scaling_keeps_the_bulk_and_bounds_wild_values():
    rng = np.random.default_rng(0)
    carat = np.r_[rng.lognormal(0.0, 0.5, size=400), 0.0, 0.0, 80.0, np.nan]  # skewed, zeros, a wild value, a gap
    frame = pd.DataFrame({"carat": carat, "flag": np.arange(404) % 10 == 0})
    standard = ColumnEncoding.fit(as_table(frame))
    robust = ColumnEncoding.fit(as_table(frame), scaling="robust")
    z_std, z_rob = _encode(standard, as_table(frame)), _encode(robust, as_table(frame))
    assert robust.features == standard.features  # same features, only the numbers differ
    present = ~np.isnan(carat)
    assert np.abs(z_std[present, 0]).max() > 10  # standardised, the wild value sits far out ...
    assert np.abs(z_rob[:, 0]).max() < 3.0  # smoothly clipped: within ±3
    assert np.all(np.diff(z_rob[np.argsort(carat[present]), 0]) >= 0)  # the order of the values is kept
    bulk = present & (carat > np.nanquantile(carat, 0.25)) & (carat < np.nanquantile(carat, 0.75))
    # The middle half spans about one unit (the interquartile range) and stays close to linear in the value.
    assert 0.8 < z_rob[bulk, 0].max() - z_rob[bulk, 0].min() < 1.0
    assert z_std[bulk, 0].max() - z_std[bulk, 0].min() < 0.2  # ... and squeezes the middle half into a sliver
    assert np.corrcoef(carat[bulk], z_rob[bulk, 0])[0, 1] > 0.99
    assert z_rob[~present, 0] == pytest.approx(0.0) and z_rob[~present, 1] == 1.0  # a gap: the median, flagged
    np.testing.assert_array_equal(z_rob[:, 2], z_std[:, 2])  # booleans stay standardised
    assert ColumnEncoding.from_dict(robust.to_dict()) == robust


def test_robust_scaling_clamps_values_beyond_the_training_tails():
    rng = np.random.default_rng(1)
    size = np.r_[rng.uniform(3.0, 10.0, size=3000), 0.0]  # one size recorded as 0 among 3,000 real ones
    encoding = ColumnEncoding.fit(as_table(pd.DataFrame({"size": size})), scaling="robust")
    new = pd.DataFrame({"size": [0.0, -50.0, np.quantile(size, 0.001), 1e6, np.quantile(size, 0.999), 6.5]})
    z = _encode(encoding, as_table(new))[:, 0]
    # A zero (below the 0.1% quantile: the lone zero does not count) or a value out of any range is
    # read as the edge of what was seen, as a tree reads it, not extrapolated from.
    assert z[0] == z[1] == pytest.approx(z[2]) and z[3] == pytest.approx(z[4])
    assert z[2] < z[5] < z[4] and z[2] > -1.0  # 3, the lower edge, is one interquartile range below the median


def test_robust_scaling_of_a_mostly_constant_column_uses_its_range():
    values = np.r_[np.zeros(90), np.linspace(1.0, 10.0, 10)]  # interquartile range 0
    encoding = ColumnEncoding.fit(as_table(pd.DataFrame({"v": values})), scaling="robust")
    z = _encode(encoding, as_table(pd.DataFrame({"v": values})))[:, 0]
    assert len(np.unique(z)) == 11 and z[0] == 0.0 and 0.0 < z[-1] < 3.0


def test_an_encoder_saved_before_robust_scaling_loads_unclipped():
    config = NumericEncoder(mean=1.0, scale=2.0).get_config()
    assert "clip" not in config  # what artifacts saved before robust scaling hold
    layer = NumericEncoder.from_config(config)
    assert keras.ops.convert_to_numpy(layer(np.array([[101.0]]))).item() == pytest.approx(50.0)
    clipped = NumericEncoder.from_config(NumericEncoder(mean=1.0, scale=2.0, clip=3.0).get_config())
    assert 2.9 < keras.ops.convert_to_numpy(clipped(np.array([[101.0]]))).item() < 3.0


def test_an_unknown_scaling_is_refused():
    with pytest.raises(ConfigError, match=r"invalid value for scaling, expected one of \['standard', 'robust'\]"):
        ColumnEncoding.fit(as_table(pd.DataFrame({"v": [1.0, 2.0]})), scaling="quantile")
