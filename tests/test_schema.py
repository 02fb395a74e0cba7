import numpy as np
import pandas as pd
import pytest

from archguide.exceptions import DataError
from archguide.schema import as_table, check_target, format_names


def test_kinds_are_typed_with_dtype_helpers():
    frame = pd.DataFrame(
        {
            "f": [1.5, 2.5, np.nan],
            "i": pd.array([1, None, 3], dtype="Int64"),
            "s": pd.Series(["a", "b", None], dtype="str"),  # pandas 3's default string dtype
            "o": pd.Series(["a", 1, None], dtype=object),  # mixed plain values: labels
            "c": pd.Categorical(["x", "y", "x"]),
            "b": [True, False, True],
            "nb": pd.array([True, None, False], dtype="boolean"),
            "on": pd.Series([1, 2.5, None], dtype=object),  # numbers stored as objects
        }
    )
    table = as_table(frame)
    assert table.kinds == {
        "f": "numeric",
        "i": "numeric",
        "s": "categorical",
        "o": "categorical",
        "c": "categorical",
        "b": "boolean",
        "nb": "boolean",
        "on": "numeric",
    }
    assert table.categories["s"] == ("a", "b")
    assert table.categories["o"] == ("1", "a")


def test_encode_selected_rows():
    frame = pd.DataFrame({"n": [1.0, np.nan, 3.0], "s": ["b", "a", None], "b": [True, False, True]})
    table = as_table(frame)
    out = table.encode(np.array([2, 0, 1]))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[:, 0], [3.0, 1.0, np.nan])
    np.testing.assert_array_equal(out[:, 1], [np.nan, 1.0, 0.0])  # categories sorted: a=0, b=1
    np.testing.assert_array_equal(out[:, 2], [1.0, 1.0, 0.0])


def test_array_names_and_no_copy_of_caller_data():
    X = np.arange(12.0).reshape(4, 3)
    X.flags.writeable = False
    table = as_table(X)
    assert table.names == ("x0", "x1", "x2")
    block = table.encode(np.array([1]))
    block[:] = -1  # the encoded block is the library's own
    assert X[1, 0] == 3.0


def test_non_string_column_names_become_strings():
    table = as_table(pd.DataFrame(np.ones((3, 2))))
    assert table.names == ("0", "1")


def test_string_array_is_categorical():
    table = as_table(np.array([["a", "1"], ["b", "2"]]))
    assert table.kinds == {"x0": "categorical", "x1": "categorical"}


def test_more_than_five_names_are_cut():
    assert format_names(list("abcdefg")) == "'a', 'b', 'c', 'd', 'e', ..."


def test_error_lists_every_offending_column_up_to_five():
    frame = pd.DataFrame({f"c{i}": [np.nan] * 3 for i in range(7)} | {"ok": [1.0, 2.0, 3.0]})
    with pytest.raises(DataError, match=r"'c0', 'c1', 'c2', 'c3', 'c4', \.\.\. of X are entirely missing"):
        as_table(frame)


def test_check_target_accepts_common_containers_and_copies():
    y = np.array([1.0, 2.0, 3.0])
    out = check_target(y, 3)
    out[0] = 99
    assert y[0] == 1.0
    assert check_target(pd.DataFrame({"t": [1, 2, 3]}), 3).tolist() == [1, 2, 3]
    assert check_target([[1], [2], [3]], 3).tolist() == [1, 2, 3]
    assert check_target(pd.Series(["a", "b", "a"], dtype="category"), 3).tolist() == ["a", "b", "a"]
    with pytest.raises(DataError, match="missing"):
        check_target(pd.Series([1.0, None, 2.0], dtype="Float64"), 3)
    with pytest.raises(DataError, match="missing"):
        check_target(pd.Series(["a", None, "b"], dtype="str"), 3)


def test_entirely_missing_columns_are_allowed_only_when_asked():
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [np.nan, np.nan], "c": pd.Series([None, None], dtype="string")})
    with pytest.raises(DataError, match="'b', 'c' of X are entirely missing"):
        as_table(frame)
    table = as_table(frame, allow_missing_columns=True)
    assert table.missing_columns == {"b", "c"}
    assert np.isnan(table.encode()[:, 1:]).all()
    assert as_table(np.array([[1.0, np.nan]]), allow_missing_columns=True).missing_columns == {"x1"}


def test_sparse_input_says_it_is_not_supported():
    from scipy import sparse

    for matrix in (sparse.csr_matrix(np.eye(3)), sparse.csr_array(np.eye(3))):
        with pytest.raises(DataError, match=r"Sparse data is not supported.*toarray\(\)"):
            as_table(matrix)
