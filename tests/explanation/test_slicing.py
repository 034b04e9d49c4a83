"""Explanation: numpy-style slicing that keeps every field aligned, and the indexes it refuses."""

from __future__ import annotations

import numpy as np
import pytest

from deepshap.explanation import Explanation
from tests.helpers.explanations import NAMES, F, K, N, coded_explanation, numpy_fields

# Each case gives one index per axis (samples, features, outputs); numpy applies it to every field.
EXPLICIT_CASES = [
    (1, slice(None), slice(None)),
    (-1, slice(None), slice(None)),
    (slice(1, 4), slice(None), slice(None)),
    (slice(None, None, -2), slice(None), slice(None)),
    ([0, 2], slice(None), slice(None)),
    (np.array([4, 0, 0]), slice(None), slice(None)),
    (np.array([True, False, True, False, True]), slice(None), slice(None)),
    (slice(None), slice(None), 2),
    (slice(None), [1, 3], slice(None)),
    ([0, 2], slice(None), 1),
    (0, 1, slice(None)),
    (np.int64(3), slice(None), np.int64(-1)),
    (slice(None), slice(1, 3), [2, 0]),
    (2, 3, 1),
]


@pytest.mark.parametrize("index", EXPLICIT_CASES, ids=repr)
def test_slicing_matches_numpy_for_every_field(index: tuple) -> None:
    e = coded_explanation()
    s, f, k = index
    sliced = e[index]
    expected = {
        "values": e.values[index],
        "base_values": e.base_values[s, k],
        "data": e.data[s, f],
        "lower_bounds": e.lower_bounds[index],
        "output_indexes": e.output_indexes[s, k],
    }
    for name, want in expected.items():
        np.testing.assert_array_equal(numpy_fields(sliced)[name], want, err_msg=name)
    assert sliced.shape == np.shape(e.values[index])
    np.testing.assert_array_equal(sliced.upper_bounds, e.upper_bounds[index])
    np.testing.assert_array_equal(sliced.error_std, e.error_std[index])
    np.testing.assert_array_equal(sliced.main_effects, e.main_effects[index])
    np.testing.assert_array_equal(sliced.hierarchical_values, e.hierarchical_values[s])
    np.testing.assert_array_equal(sliced.display_data, e.display_data[s, f])
    np.testing.assert_array_equal(sliced.instance_names, np.array(e.instance_names)[s])
    np.testing.assert_array_equal(sliced.feature_names, np.array(e.feature_names)[f])
    np.testing.assert_array_equal(sliced.output_names, np.array(NAMES)[k])
    assert sliced.compute_time == 1.5


@pytest.mark.parametrize(
    ("short", "explicit"),
    [
        ((Ellipsis, 2), (slice(None), slice(None), 2)),
        ((slice(None), Ellipsis, 2), (slice(None), slice(None), 2)),
        ((1,), (1, slice(None), slice(None))),
        (([0, 2], Ellipsis), ([0, 2], slice(None), slice(None))),
        ((Ellipsis,), (slice(None),) * 3),
        ((slice(None), 1), (slice(None), 1, slice(None))),
    ],
    ids=repr,
)
def test_ellipsis_and_missing_indexes_expand_like_numpy(short: tuple, explicit: tuple) -> None:
    e = coded_explanation()
    a, b = e[short], e[explicit]
    np.testing.assert_array_equal(a.values, e.values[short])
    for name, value in numpy_fields(a).items():
        np.testing.assert_array_equal(value, numpy_fields(b)[name], err_msg=name)


def test_single_list_and_mask_index_rows() -> None:
    e = coded_explanation()
    mask = e.base_values[:, 0] > -800
    np.testing.assert_array_equal(e[mask].values, e.values[mask])
    np.testing.assert_array_equal(e[mask].base_values, e.base_values[mask])
    assert e[[0, 2]].instance_names == ["img0", "img2"]
    assert e[[]].shape == (0, F, K)


def test_scalar_fields_and_names_keep_their_type() -> None:
    e = coded_explanation()
    assert isinstance(e[1:3].instance_names, list)
    assert e[3].instance_names == "img3"
    assert e[..., 1].output_names == "espresso"
    assert e[0, 0, 0].values == 0.0 and e[2, 3, 1].values == 231.0


def test_per_sample_clustering_is_sliced_with_rows() -> None:
    clustering = np.arange(N * 3 * 4, dtype=float).reshape(N, 3, 4)
    e = Explanation(np.zeros((N, F)), clustering=clustering)
    np.testing.assert_array_equal(e[[1, 3]].clustering, clustering[[1, 3]])
    shared = np.ones((3, 4))
    np.testing.assert_array_equal(Explanation(np.zeros((N, F)), clustering=shared)[1:3].clustering, shared)


@pytest.mark.parametrize(
    ("index", "error"),
    [
        ((0, 0, 0, 0), "too many indices"),
        ((None,), "newaxis"),
        ((Ellipsis, Ellipsis), "single ellipsis"),
        ((7,), "out of bounds"),
        (([0, 9],), "out of bounds"),
        ((np.ones((N, F), bool),), "boolean"),
        ((np.array([True, False]),), "boolean"),
        ((True,), "True/False"),
        ((1.5,), "must be an int"),
    ],
    ids=repr,
)
def test_bad_indexes_raise_index_error(index: tuple, error: str) -> None:
    with pytest.raises(IndexError, match=error):
        coded_explanation()[index]


def test_per_sample_trees_of_different_sizes_are_sliced_by_sample():
    trees = np.empty(3, dtype=object)
    for i, n_nodes in enumerate((2, 5, 3)):
        trees[i] = np.zeros((n_nodes, 4))
    exp = Explanation(np.zeros((3, 4, 4, 1)), clustering=trees)
    assert exp[1].clustering.shape == (5, 4)
    assert [t.shape[0] for t in exp[[2, 0]].clustering] == [3, 2]


def test_arrays_and_masks_before_an_ellipsis() -> None:
    e = coded_explanation()
    np.testing.assert_array_equal(e[np.array([0, 2]), ...].values, e.values[[0, 2]])
    mask = np.array([True, False, True, False, True])
    np.testing.assert_array_equal(e[mask, ..., 0].values, e.values[mask][..., 0])
    np.testing.assert_array_equal(e[mask, ..., 0].base_values, e.base_values[mask][:, 0])


def test_two_lists_in_one_index_are_an_error_not_a_different_result() -> None:
    with pytest.raises(IndexError, match="one axis with a list or array at a time"):
        coded_explanation()[[0, 1], [2, 3]]


def test_partition_node_values_follow_the_output_axis() -> None:
    """Per image, the sparse (nodes, k) node values keep the outputs that slicing keeps, also when a
    name picks a different output per image; reducing over images does not compare sparse matrices."""
    import warnings

    import deepshap

    rng = np.random.default_rng(0)
    X = rng.random((2, 6, 6, 3))
    weights = rng.normal(size=(6 * 6 * 3, 4))
    names = ["a", "b", "c", "d"]
    explainer = deepshap.Explainer(
        lambda x: np.tanh(x.reshape(len(x), -1) @ weights),
        deepshap.maskers.Image("blur(2,2)", X[0].shape),
        output_names=names,
    )
    e = explainer(X, max_evals=60, outputs=np.array([[0, 1], [1, 0]]), silent=True)
    for i in range(2):
        node_sums = e[..., 1].hierarchical_values[i].sum(axis=0)
        np.testing.assert_allclose(node_sums, e.hierarchical_values[i].toarray()[:, 1].sum())
        by_name = e[..., "a"].hierarchical_values[i].toarray()
        np.testing.assert_allclose(by_name, e.hierarchical_values[i].toarray()[:, [0, 1][i]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        e.abs.mean(0)


def test_an_int_and_a_list_that_numpy_would_reorder_are_an_error() -> None:
    e = coded_explanation()
    for index in ((1, ..., [2, 0]), (1, slice(None), [2, 0])):  # numpy puts the list's axis first
        with pytest.raises(IndexError, match=r"in two steps instead, e.g. e\[1\]\[\.\.\., \[3, 0\]\]"):
            e[index]
    np.testing.assert_array_equal(e[1][..., [2, 0]].values, e.values[1][..., [2, 0]])
    np.testing.assert_array_equal(e[[0, 2], :, 1].values, e.values[[0, 2], :, 1])  # numpy agrees here
    np.testing.assert_array_equal(e[:, 1, [2, 0]].values, e.values[:, 1, [2, 0]])  # side by side
