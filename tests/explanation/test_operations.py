"""Explanation: element-wise operations, reductions, sampling and arithmetic, against numpy (and shap)."""

from __future__ import annotations

import numpy as np
import pytest

from deepshap.explanation import Explanation
from tests.helpers.explanations import NAMES, N, coded_explanation


def test_abs_argsort_flip_match_numpy() -> None:
    rng = np.random.default_rng(1)
    values = rng.normal(size=(3, 6))
    data = rng.normal(size=(3, 6))
    e = Explanation(values, base_values=np.arange(3.0), data=data)
    np.testing.assert_array_equal(e.abs.values, np.abs(values))
    np.testing.assert_array_equal(e.abs.data, data)  # attributions change, inputs do not
    np.testing.assert_array_equal(e.argsort.values, np.argsort(values, axis=-1))
    assert e.argsort.data is None  # data no longer lines up with sort indices
    np.testing.assert_array_equal(e.argsort.base_values, np.arange(3.0))
    flipped = e.flip
    np.testing.assert_array_equal(flipped.values, np.flip(values))
    np.testing.assert_array_equal(flipped.data, np.flip(data))
    np.testing.assert_array_equal(flipped.base_values, np.arange(3.0)[::-1])
    assert e.identity is e


def test_argsort_keeps_ties_in_order() -> None:
    np.testing.assert_array_equal(Explanation(np.array([1.0, 0.0, 1.0, 0.0])).argsort.values, [1, 3, 0, 2])


@pytest.mark.parametrize("fname", ["mean", "sum", "max", "min"])
@pytest.mark.parametrize("axis", [0, 1, 2, -1, None])
def test_reductions_match_numpy(fname: str, axis: int | None) -> None:
    e = coded_explanation()
    reduced = getattr(e, fname)(axis)
    np.testing.assert_allclose(reduced.values, getattr(np, fname)(e.values, axis=axis))
    if axis == 0:
        np.testing.assert_allclose(reduced.base_values, getattr(np, fname)(e.base_values, axis=0))
        np.testing.assert_allclose(reduced.data, getattr(np, fname)(e.data, axis=0))
        assert reduced.output_names == NAMES and reduced.output_dims == (1,)
        assert reduced.instance_names is None
    if axis == 1:
        np.testing.assert_array_equal(reduced.base_values, e.base_values)
        assert reduced.feature_names is None and reduced.output_dims == (1,)
        np.testing.assert_array_equal(reduced[..., "crane"].values, getattr(np, fname)(e.values, 1)[:, 2])
    if axis in (2, -1):
        assert reduced.output_names is None and reduced.output_dims == ()
        np.testing.assert_array_equal(reduced.data, e.data)
    if axis is None:
        assert reduced.shape == () and reduced.base_values is None


def test_reduction_keeps_per_row_names_only_when_rows_agree() -> None:
    same = np.array([["a", "b"], ["a", "b"]])
    e = Explanation(np.ones((2, 3, 2)), base_values=np.zeros((2, 2)), output_names=same)
    assert list(e.mean(0).output_names) == ["a", "b"]
    differ = np.array([["a", "b"], ["b", "a"]])
    assert Explanation(np.ones((2, 3, 2)), output_names=differ).mean(0).output_names is None


def test_reduction_rejects_bad_axis() -> None:
    with pytest.raises(ValueError, match="axis 3"):
        coded_explanation().mean(3)


def test_sample_draws_aligned_rows_reproducibly() -> None:
    e = coded_explanation()
    a, b = e.sample(3, random_state=0), e.sample(3, random_state=0)
    np.testing.assert_array_equal(a.values, b.values)
    rows = (a.values[:, 0, 0] // 100).astype(int)
    assert len(set(rows)) == 3
    np.testing.assert_array_equal(a.base_values, e.base_values[rows])
    np.testing.assert_array_equal(a.data, e.data[rows])
    assert a.instance_names == [f"img{r}" for r in rows]
    assert len(e.sample(50)) == N
    assert len(e.sample(8, replace=True)) == 8
    assert not np.array_equal(e.sample(4, random_state=1).values, e.sample(4, random_state=2).values)


@pytest.mark.parametrize("axis", [0, 1, None])
def test_percentile_matches_numpy(axis: int | None) -> None:
    e = coded_explanation()
    np.testing.assert_allclose(e.percentile(90, axis).values, np.percentile(e.values, 90, axis=axis))
    if axis == 0:
        np.testing.assert_allclose(e.percentile(90, 0).data, np.percentile(e.data, 90, axis=0))
    lazy = Explanation.abs.percentile(50, 0)
    np.testing.assert_allclose(lazy.apply(e).values, np.percentile(np.abs(e.values), 50, axis=0))
    with pytest.raises(ValueError, match="between 0 and 100"):
        e.percentile(150)


def test_scaling_an_explanation_explains_the_scaled_model() -> None:
    """c * explanation of f = explanation of c * f: values and base values scale, the data does not,
    and the values still add up to the (scaled) output."""
    e = coded_explanation()
    total = e.values.sum(1) + e.base_values
    for scaled, factor in ((e * 3.0, 3.0), (2 * e, 2.0), (e / 4, 0.25), (-e, -1.0)):
        np.testing.assert_allclose(scaled.values, e.values * factor)
        np.testing.assert_array_equal(scaled.data, e.data)
        np.testing.assert_allclose(scaled.values.sum(1) + scaled.base_values, total * factor)
        assert scaled.output_names == NAMES and scaled[..., "crane"].shape == e[..., "crane"].shape
    with pytest.raises(TypeError, match="multiplied by a number only"):
        e * np.ones(e.shape)


def test_explanations_of_two_models_add_up_to_the_explanation_of_their_sum() -> None:
    e = coded_explanation()
    other = Explanation(e.values[::-1].copy(), base_values=e.base_values + 1, data=e.data)
    both = e + other
    np.testing.assert_allclose(both.values, e.values + other.values)
    np.testing.assert_allclose(both.base_values, e.base_values + other.base_values)
    assert both.error_std is None and both.lower_bounds is None  # they do not add up
    np.testing.assert_allclose((e - e).values, 0.0)
    with pytest.raises(TypeError, match="Adding a number"):
        e + 1.0
    with pytest.raises(ValueError, match="different inputs"):
        e + Explanation(e.values, base_values=e.base_values, data=e.data + 1)


def test_explanations_of_different_outputs_do_not_add_and_sum_works() -> None:
    e = coded_explanation()
    other = Explanation(e.values, base_values=e.base_values, data=e.data, output_names=NAMES[::-1])
    with pytest.raises(ValueError, match="different outputs"):
        e + other
    np.testing.assert_allclose(sum([e, e, e]).values, 3 * e.values)


def test_percentile_of_boolean_data() -> None:
    e = Explanation(np.arange(8.0).reshape(4, 2), data=np.array([[True, False]] * 4))
    np.testing.assert_allclose(e.percentile(50, 0).data, [1.0, 0.0])


@pytest.mark.parametrize("reduce", ["mean", "sum", "max", "min"])
def test_reducing_over_several_axes_matches_numpy_and_shap(reduce: str) -> None:
    shap = pytest.importorskip("shap")
    rng = np.random.default_rng(0)
    values, base, data = rng.normal(size=(2, 8, 8, 3, 4)), rng.normal(size=(2, 4)), rng.random((2, 8, 8, 3))
    ours = getattr(Explanation(values, base, data, output_names=list("abcd")).abs, reduce)((1, 2, 3))
    theirs = getattr(shap.Explanation(values, base, data, output_names=list("abcd")).abs, reduce)((1, 2, 3))
    np.testing.assert_allclose(ours.values, getattr(np, reduce)(np.abs(values), axis=(1, 2, 3)))
    np.testing.assert_allclose(ours.values, theirs.values)
    np.testing.assert_array_equal(ours.base_values, base)
    np.testing.assert_allclose(ours.data, getattr(np, reduce)(data, axis=(1, 2, 3)))
    assert ours.output_dims == (1,) and list(ours.output_names) == list("abcd")


def test_reducing_over_a_tuple_of_axes_names_the_problem() -> None:
    e = coded_explanation()
    with pytest.raises(ValueError, match="takes one axis"):
        e.percentile(50, (1, 2))
    with pytest.raises(ValueError, match="names an axis twice"):
        e.mean((1, -2))
    with pytest.raises(ValueError, match="is not an axis"):
        e.sum((0, 3))
    np.testing.assert_array_equal(e.percentile(50, (1,)).values, np.percentile(e.values, 50, axis=1))
    top = e[..., e.abs.mean((0, 1)).argsort.flip[:2].values]
    np.testing.assert_array_equal(top.output_names, ["crane", "espresso"])
