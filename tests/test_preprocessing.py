"""In-model preprocessing: the encoding fitted on a table, and the layers that apply it."""

import numpy as np
import pandas as pd
import pytest

from archguide.exceptions import DataError
from archguide.preprocessing import CategoryEncoder, ColumnEncoding, NumericEncoder
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
