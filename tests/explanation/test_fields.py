"""Explanation: its fields, where the output axes are read from, alignment checks, copies."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from deepshap.explanation import Explanation
from tests.helpers.explanations import NAMES, F, K, N, coded_explanation


def test_output_axes_are_read_from_names_indexes_or_base_values() -> None:
    v = np.zeros((2, 4, 3))
    assert Explanation(v).output_dims == ()
    assert Explanation(v, base_values=np.zeros(2)).output_dims == ()  # one base value per sample
    assert Explanation(v, base_values=np.zeros((2, 3))).output_dims == (2,)
    assert Explanation(v, output_names=["a", "b", "c"]).output_dims == (2,)
    assert Explanation(v, output_indexes=np.zeros((2, 3), int)).output_dims == (2,)
    assert Explanation(v[0], base_values=np.zeros(3)).output_dims == (1,)  # one sample, no sample axis
    assert Explanation(np.zeros((2, 4)), base_values=np.zeros(2)).output_dims == ()


def test_one_output_as_a_base_value_column_like_shaps_deep_explainer() -> None:
    """shap's DeepExplainer gives base_values (N, 1) with values (N, F) for a one-output model."""
    values, base = np.arange(12.0).reshape(4, 3), np.arange(4.0)[:, None]
    e = Explanation(values, base_values=base, data=np.ones((4, 3)))
    assert e.output_dims == ()
    np.testing.assert_array_equal(e[2].base_values, [2.0])
    assert e[1:3].base_values.shape == (2, 1) and e[:, 1].base_values.shape == (4, 1)
    np.testing.assert_array_equal(e.mean(0).base_values, [1.5])
    np.testing.assert_array_equal(e[:, 1].values, values[:, 1])
    with pytest.raises(ValueError, match="base_values has shape"):
        Explanation(values, base_values=np.zeros((4, 2)))


def test_fields_and_shape_and_clone() -> None:
    e = coded_explanation()
    assert e.shape == (N, F, K) and len(e) == N
    assert e.clustering is None and Explanation(np.zeros(2)).main_effects is None
    clone = Explanation(e)
    np.testing.assert_array_equal(clone.base_values, e.base_values)
    assert clone.output_names == NAMES and clone.compute_time == 1.5
    np.testing.assert_array_equal(np.asarray(e), e.values)


def test_iteration_yields_rows() -> None:
    e = coded_explanation()
    rows = list(e)
    assert len(rows) == N
    for r, row in enumerate(rows):
        np.testing.assert_array_equal(row.values, e.values[r])
        np.testing.assert_array_equal(row.base_values, e.base_values[r])
    with pytest.raises(TypeError, match="0-d"):
        len(e.sum())


def test_repr_shows_values_base_values_and_data() -> None:
    text = repr(Explanation(np.array([[1.0, 2.0]]), base_values=np.array([0.5]), data=np.array([[3.0, 4.0]])))
    assert text.startswith(".values =\narray([[1., 2.]])")
    assert "\n\n.base_values =\narray([0.5])" in text and "\n\n.data =\narray([[3., 4.]])" in text
    assert ".base_values" not in repr(Explanation(np.zeros(2)))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"data": np.zeros((3, 4))}, "data has shape"),
        ({"base_values": np.zeros((5, 2))}, "base_values has shape"),
        ({"output_names": ["a", "b"]}, "output_names has shape"),
        ({"instance_names": ["a"]}, "instance_names"),
        ({"feature_names": ["a", "b"]}, "feature_names"),
    ],
)
def test_misaligned_fields_are_rejected(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Explanation(np.zeros((5, 4, 3)), **kwargs)


def test_ragged_values_are_rejected() -> None:
    with pytest.raises(TypeError, match="rectangular"):
        Explanation([np.zeros(2), np.zeros(3)])


def test_assigning_fields_checks_alignment() -> None:
    e = coded_explanation()
    e.data = np.ones((N, F))
    np.testing.assert_array_equal(e[1:3].data, np.ones((2, F)))
    with pytest.raises(ValueError, match="data has shape"):
        e.data = np.ones((2, 2))
    e.values = e.values * 2
    np.testing.assert_array_equal(e[..., "crane"].values, 2 * coded_explanation().values[..., 2])


def test_module_imports_without_frameworks() -> None:
    code = "import sys, deepshap.explanation; assert not {'torch', 'tensorflow'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_copy_is_independent_of_the_original() -> None:
    import copy

    e = coded_explanation()
    c = copy.copy(e)
    c.base_values = np.full((N, K), 7.0)
    assert not np.any(e.base_values == 7.0)
    c.values = np.zeros((N, F, K))
    assert np.any(e.values != 0)
    with pytest.raises(ValueError, match="output_names has shape"):
        c.values = np.zeros((N, F))  # the names no longer fit: nothing changes
    assert c.shape == (N, F, K)


def test_fields_that_say_where_the_outputs_are_can_be_set_later() -> None:
    e = Explanation(np.ones((4, 5, 3)))
    e.base_values = np.zeros((4, 3))
    assert e.output_dims == (2,) and e[0].base_values.shape == (3,)
    square = Explanation(np.ones((3, 5, 3)))
    square.output_names = ["a", "b", "c"]
    assert square.output_dims == (2,)
    np.testing.assert_array_equal(square[..., "b"].values, np.ones((3, 5)))
    with pytest.raises(ValueError, match="output_names has shape"):
        square.output_names = ["a", "b"]
    assert list(square.output_names) == ["a", "b", "c"]  # a failed assignment changes nothing


def per_sample_ranked(n_images: int) -> Explanation:
    """Images (n, 8, 8, 3) with 3 outputs each, named per image as the Partition explainer names them."""
    rng = np.random.default_rng(n_images)
    names = np.array([["c2", "c4", "c5"], ["c2", "c3", "c4"], ["c1", "c2", "c3"]])[:n_images]
    return Explanation(
        rng.normal(size=(n_images, 8, 8, 3, 3)), rng.normal(size=(n_images, 3)), output_names=names
    )


@pytest.mark.parametrize("n_images", [2, 3])  # 3: as many images as channels, where shapes alone mislead
def test_setting_a_field_of_the_shape_it_had_keeps_the_layout(n_images: int) -> None:
    one = per_sample_ranked(n_images)[..., 0]
    assert one.output_dims == () and one.shape == (n_images, 8, 8, 3)
    one.values = one.values * 2
    one.base_values = one.base_values + 1
    assert one.output_dims == ()
    assert one[0].output_names == "c2" and one[0].base_values.shape == ()
    assert Explanation(one).output_dims == () and Explanation(one)[1].output_names == "c2"


def test_one_name_per_image_without_an_output_axis_is_read_as_such() -> None:
    values = np.zeros((2, 8, 8, 3))
    built = Explanation(values, base_values=np.zeros(2), output_names=["cat", "dog"])
    assert built.output_dims == () and built[1].output_names == "dog"


def test_a_copy_keeps_the_source_layout_and_takes_the_fields_given() -> None:
    ten = Explanation(np.ones((2, 10, 10, 1, 10)), base_values=np.arange(20.0).reshape(2, 10))
    first = ten[0]  # (10, 10, 1, 10): as many rows as outputs
    copied = Explanation(first)
    assert copied.output_dims == first.output_dims == (3,)
    assert copied[:5].base_values.shape == (10,)
    renamed = Explanation(first, output_names=[f"o{k}" for k in range(10)])
    assert renamed[..., "o3"].base_values == 3.0 and first.output_names is None


def test_data_that_does_not_line_up_with_the_values_is_an_error() -> None:
    values = np.zeros((2, 8, 8, 3, 4))
    with pytest.raises(ValueError, match="does not line up with values"):
        Explanation(values, base_values=np.zeros((2, 4)), data=np.zeros((2, 3, 8, 8)))  # channels first
    e = Explanation(values, base_values=np.zeros((2, 4)), data=np.zeros((2, 8, 8, 3)))
    with pytest.raises(ValueError, match="does not line up with values"):
        e.data = np.zeros((2, 7, 8, 3))
    assert e.data.shape == (2, 8, 8, 3)
    with pytest.raises(TypeError, match="needs values"):
        Explanation(None)
