"""Explanation: output, instance and feature names as indexes, flat or one list per row."""

from __future__ import annotations

import numpy as np
import pytest

from deepshap.explanation import Explanation
from tests.helpers.explanations import coded_explanation, numpy_fields


@pytest.mark.parametrize(
    "index",
    [(Ellipsis, "espresso"), (slice(None), Ellipsis, "espresso"), (slice(None), "espresso"), ("espresso",)],
    ids=repr,
)
def test_flat_output_name_selects_the_output_axis(index: tuple) -> None:
    e = coded_explanation()
    by_name, by_position = e[index], e[..., 1]
    for name, value in numpy_fields(by_name).items():
        np.testing.assert_array_equal(value, numpy_fields(by_position)[name], err_msg=name)
    assert by_name.output_names == "espresso" and by_name.output_dims == ()


def test_output_name_combines_with_row_selection() -> None:
    e = coded_explanation()
    picked = e[[0, 3], ..., "crane"]
    np.testing.assert_array_equal(picked.values, e.values[[0, 3], :, 2])
    np.testing.assert_array_equal(picked.base_values, e.base_values[[0, 3], 2])
    np.testing.assert_array_equal(picked.data, e.data[[0, 3]])


def test_instance_name_selects_a_row() -> None:
    e = coded_explanation()
    np.testing.assert_array_equal(e["img3"].values, e.values[3])
    np.testing.assert_array_equal(e["img3", ..., "crane"].base_values, e.base_values[3, 2])


def test_feature_name_selects_its_own_axis() -> None:
    e = coded_explanation()
    np.testing.assert_array_equal(e[:, "f2"].values, e.values[:, 2])
    np.testing.assert_array_equal(e[:, "f2", "crane"].values, e.values[:, 2, 2])


def test_per_row_output_names_select_each_rows_column() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(size=(3, 4, 2))
    base = rng.normal(size=(3, 2))
    data = rng.normal(size=(3, 4))
    names = np.array([["espresso", "cup"], ["cup", "espresso"], ["cup", "tabby"]])
    e = Explanation(values, base_values=base, data=data, output_names=names, instance_names=["a", "b", "c"])
    assert e.output_dims == (2,)

    picked = e[:, "espresso"]
    # rows 0 and 1 name espresso (in columns 0 and 1); row 2 does not and is left out, as in shap
    np.testing.assert_array_equal(picked.values, np.stack([values[0, :, 0], values[1, :, 1]]))
    np.testing.assert_array_equal(picked.base_values, [base[0, 0], base[1, 1]])
    np.testing.assert_array_equal(picked.data, data[:2])
    assert picked.instance_names == ["a", "b"]
    assert list(picked.output_names) == ["espresso", "espresso"]
    np.testing.assert_array_equal(e[..., "espresso"].values, picked.values)

    row = e[1]  # per-row names become that row's flat names
    assert list(row.output_names) == ["cup", "espresso"]
    np.testing.assert_array_equal(row[..., "espresso"].values, values[1, :, 1])


def test_per_row_names_follow_slicing() -> None:
    names = np.array([["x", "y"], ["y", "z"], ["z", "x"]])
    e = Explanation(np.arange(12.0).reshape(3, 2, 2), base_values=np.zeros((3, 2)), output_names=names)
    np.testing.assert_array_equal(e[[2, 0]].output_names, names[[2, 0]])
    np.testing.assert_array_equal(e[:, :, ::-1].output_names, names[:, ::-1])
    np.testing.assert_array_equal(e[..., 1].output_names, names[:, 1])


@pytest.mark.parametrize("index", [(Ellipsis, "latte"), (slice(None), "latte"), ("latte",)], ids=repr)
def test_unknown_output_name_raises_key_error_naming_known_ones(index: tuple) -> None:
    with pytest.raises(KeyError, match="latte.*espresso"):
        coded_explanation()[index]


def test_name_missing_from_every_row_raises() -> None:
    names = np.array([["x", "y"], ["y", "z"]])
    e = Explanation(np.zeros((2, 3, 2)), base_values=np.zeros((2, 2)), output_names=names)
    with pytest.raises(KeyError, match="'w'"):
        e[:, "w"]
    with pytest.raises(KeyError, match="'x'"):
        e[1, ..., "x"]  # row 1 has no x


def test_name_index_without_names_raises() -> None:
    with pytest.raises(KeyError, match="no output_names"):
        Explanation(np.zeros((2, 3)))[:, "espresso"]


def test_tensors_and_lists_of_names_as_indexes() -> None:
    torch = pytest.importorskip("torch")

    e = coded_explanation()
    np.testing.assert_array_equal(e[torch.tensor(1)].values, e.values[1])
    np.testing.assert_array_equal(e[..., torch.tensor(2)].values, e.values[..., 2])
    picked = e[..., ["crane", "tabby"]]
    np.testing.assert_array_equal(picked.values, e.values[..., [2, 0]])
    assert list(picked.output_names) == ["crane", "tabby"]
    np.testing.assert_array_equal(e[:, ["f3", "f1"]].values, e.values[:, [3, 1]])
    with pytest.raises(IndexError, match="No axis is labelled with all of"):
        e[..., ["crane", "lynx"]]
