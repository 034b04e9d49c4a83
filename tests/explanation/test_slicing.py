"""Explanation: fields, numpy-style slicing that keeps every field aligned, operations, lazy selectors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from deepshap.explanation import Explanation, OpChain

N, F, K = 5, 4, 3
NAMES = ["tabby", "espresso", "crane"]


def coded_explanation() -> Explanation:
    """values[i, f, k] = 100 i + 10 f + k, and every field coded by the axes it follows."""
    i, f, k = np.meshgrid(np.arange(N), np.arange(F), np.arange(K), indexing="ij")
    values = (100 * i + 10 * f + k).astype(float)
    return Explanation(
        values,
        base_values=values[:, 0, :] - 1000,
        data=values[:, :, 0] + 0.5,
        display_data=values[:, :, 0].astype(int),
        instance_names=[f"img{r}" for r in range(N)],
        feature_names=[f"f{c}" for c in range(F)],
        output_names=NAMES,
        output_indexes=np.tile(np.arange(K), (N, 1)),
        lower_bounds=values - 1,
        upper_bounds=values + 1,
        error_std=values / 1000,
        main_effects=values + 0.25,
        hierarchical_values=np.arange(N * (2 * F - 1), dtype=float).reshape(N, 2 * F - 1),
        compute_time=1.5,
    )


def numpy_fields(e: Explanation) -> dict[str, np.ndarray]:
    return {
        "values": e.values,
        "base_values": e.base_values,
        "data": e.data,
        "lower_bounds": e.lower_bounds,
        "output_indexes": e.output_indexes,
    }


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


# ---------------------------------------------------------------------------- names as indexes


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


# ---------------------------------------------------------------------------- construction


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


def test_per_sample_clustering_is_sliced_with_rows() -> None:
    clustering = np.arange(N * 3 * 4, dtype=float).reshape(N, 3, 4)
    e = Explanation(np.zeros((N, F)), clustering=clustering)
    np.testing.assert_array_equal(e[[1, 3]].clustering, clustering[[1, 3]])
    shared = np.ones((3, 4))
    np.testing.assert_array_equal(Explanation(np.zeros((N, F)), clustering=shared)[1:3].clustering, shared)


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


# ---------------------------------------------------------------------------- operations


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


# ---------------------------------------------------------------------------- lazy selectors


def test_argsort_flip_top4_selector() -> None:
    chain = Explanation.argsort.flip[:4]
    assert isinstance(chain, OpChain)
    top = chain.apply(Explanation(np.array([0.1, 0.5, 0.2, 0.9, 0.3])))
    np.testing.assert_array_equal(top.values, [3, 1, 4, 2])
    scores = np.random.default_rng(2).random(1000)
    np.testing.assert_array_equal(np.asarray(chain.apply(scores)), np.argsort(-scores)[:4])


def test_selector_per_row_like_the_partition_explainer() -> None:
    scores = np.random.default_rng(3).random((3, 10))
    chain = Explanation.argsort.flip[:2]
    picked = np.stack([chain.apply(Explanation(row)).values for row in scores])
    np.testing.assert_array_equal(picked, np.argsort(-scores, axis=1)[:, :2])


def test_class_access_builds_chains_and_instance_access_runs() -> None:
    for name in ["abs", "argsort", "flip", "identity", "mean", "sum", "max", "min", "sample"]:
        assert isinstance(getattr(Explanation, name), OpChain), name
    assert isinstance(Explanation[:, 0], OpChain)
    e = coded_explanation()
    assert isinstance(e.abs, Explanation) and isinstance(e.mean(0), Explanation)


def test_chains_replay_operations() -> None:
    e = coded_explanation()
    values = e.values - 200
    e.values = values
    np.testing.assert_allclose(Explanation.abs.mean(0).apply(e).values, np.abs(values).mean(0))
    np.testing.assert_allclose(Explanation[..., 2].abs.sum(1).apply(e).values, np.abs(values[..., 2]).sum(1))
    np.testing.assert_allclose(Explanation.sample(2, random_state=0).apply(e).values, e.sample(2).values)
    np.testing.assert_allclose(Explanation.abs.mean(0).values.apply(e), np.abs(values).mean(0))


def test_chain_as_index_orders_features() -> None:
    values = np.array([[1.0, -5.0, 2.0], [3.0, 4.0, -0.5]])
    e = Explanation(values, data=values * 10, feature_names=["a", "b", "c"])
    ordered = e[:, Explanation.abs.mean(0).argsort.flip]
    order = np.argsort(-np.abs(values).mean(0))
    np.testing.assert_array_equal(ordered.values, values[:, order])
    np.testing.assert_array_equal(ordered.data, values[:, order] * 10)
    assert ordered.feature_names == ["b", "a", "c"]


def test_chain_repr_reads_like_code() -> None:
    assert repr(Explanation.argsort.flip[:4]) == "Explanation.argsort.flip[:4]"
    assert repr(Explanation.abs.mean(0)) == "Explanation.abs.mean(0)"
    assert repr(Explanation[..., 2]) == "Explanation[..., 2]"
    assert repr(Explanation.sample(5, random_state=1)) == "Explanation.sample(5, random_state=1)"
    assert repr(Explanation[0:6:2, "espresso"]) == "Explanation[0:6:2, 'espresso']"


def test_chains_are_immutable() -> None:
    mean = Explanation.mean
    along_rows, along_features = mean(0), mean(1)
    assert repr(mean) == "Explanation.mean"
    assert repr(along_rows) == "Explanation.mean(0)" and repr(along_features) == "Explanation.mean(1)"


def test_chain_misuse_is_reported_early() -> None:
    with pytest.raises(AttributeError, match="argsrot"):
        Explanation.argsort.argsrot  # noqa: B018
    with pytest.raises(TypeError, match="not a method"):
        Explanation.argsort(0)
    with pytest.raises(TypeError, match="cannot be called"):
        Explanation[0](1)
    with pytest.raises(TypeError, match="lazy selector"):
        list(Explanation.argsort)
    with pytest.raises(AttributeError):
        Explanation.argsort.__array_interface__  # noqa: B018


# ---------------------------------------------------------------------------- shap compatibility


def test_agrees_with_shap_where_shap_works() -> None:
    import shap

    scores = np.random.default_rng(4).random(20)
    ours = Explanation.argsort.flip[:4].apply(Explanation(scores)).values
    theirs = shap.Explanation.argsort.flip[:4].apply(shap.Explanation(scores)).values
    np.testing.assert_array_equal(ours, theirs)

    values = np.random.default_rng(5).normal(size=(3, 4, 2))
    base = np.random.default_rng(6).normal(size=(3, 2))
    kwargs = {"base_values": base, "data": values[..., 0], "output_names": ["a", "b"]}
    ours_e, theirs_e = Explanation(values, **kwargs), shap.Explanation(values, **kwargs)
    # shap 0.51 raises IndexError for [..., "b"] on 3-D values; [:, :, "b"] works there
    for index in [(slice(None), slice(None), "b"), (1, slice(None), "a"), (1,), ([0, 2],), (0, Ellipsis, 1)]:
        np.testing.assert_array_equal(ours_e[index].values, theirs_e[index].values)
        np.testing.assert_array_equal(ours_e[index].base_values, theirs_e[index].base_values)
    np.testing.assert_allclose(ours_e.abs.mean(0).values, theirs_e.abs.mean(0).values)


def test_module_imports_without_frameworks() -> None:
    code = "import sys, deepshap.explanation; assert not {'torch', 'tensorflow'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_per_sample_trees_of_different_sizes_are_sliced_by_sample():
    trees = np.empty(3, dtype=object)
    for i, n_nodes in enumerate((2, 5, 3)):
        trees[i] = np.zeros((n_nodes, 4))
    exp = Explanation(np.zeros((3, 4, 4, 1)), clustering=trees)
    assert exp[1].clustering.shape == (5, 4)
    assert [t.shape[0] for t in exp[[2, 0]].clustering] == [3, 2]


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


def test_arrays_and_masks_before_an_ellipsis() -> None:
    e = coded_explanation()
    np.testing.assert_array_equal(e[np.array([0, 2]), ...].values, e.values[[0, 2]])
    mask = np.array([True, False, True, False, True])
    np.testing.assert_array_equal(e[mask, ..., 0].values, e.values[mask][..., 0])
    np.testing.assert_array_equal(e[mask, ..., 0].base_values, e.base_values[mask][:, 0])


def test_two_lists_in_one_index_are_an_error_not_a_different_result() -> None:
    with pytest.raises(IndexError, match="one axis with a list or array at a time"):
        coded_explanation()[[0, 1], [2, 3]]


def test_tensors_and_lists_of_names_as_indexes() -> None:
    import torch

    e = coded_explanation()
    np.testing.assert_array_equal(e[torch.tensor(1)].values, e.values[1])
    np.testing.assert_array_equal(e[..., torch.tensor(2)].values, e.values[..., 2])
    picked = e[..., ["crane", "tabby"]]
    np.testing.assert_array_equal(picked.values, e.values[..., [2, 0]])
    assert list(picked.output_names) == ["crane", "tabby"]
    np.testing.assert_array_equal(e[:, ["f3", "f1"]].values, e.values[:, [3, 1]])
    with pytest.raises(IndexError, match="No axis is labelled with all of"):
        e[..., ["crane", "lynx"]]


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


def test_explanations_of_different_outputs_do_not_add_and_sum_works() -> None:
    e = coded_explanation()
    other = Explanation(e.values, base_values=e.base_values, data=e.data, output_names=NAMES[::-1])
    with pytest.raises(ValueError, match="different outputs"):
        e + other
    np.testing.assert_allclose(sum([e, e, e]).values, 3 * e.values)


def test_percentile_of_boolean_data() -> None:
    e = Explanation(np.arange(8.0).reshape(4, 2), data=np.array([[True, False]] * 4))
    np.testing.assert_allclose(e.percentile(50, 0).data, [1.0, 0.0])


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


def test_an_int_and_a_list_that_numpy_would_reorder_are_an_error() -> None:
    e = coded_explanation()
    for index in ((1, ..., [2, 0]), (1, slice(None), [2, 0])):  # numpy puts the list's axis first
        with pytest.raises(IndexError, match=r"in two steps instead, e.g. e\[1\]\[\.\.\., \[3, 0\]\]"):
            e[index]
    np.testing.assert_array_equal(e[1][..., [2, 0]].values, e.values[1][..., [2, 0]])
    np.testing.assert_array_equal(e[[0, 2], :, 1].values, e.values[[0, 2], :, 1])  # numpy agrees here
    np.testing.assert_array_equal(e[:, 1, [2, 0]].values, e.values[:, 1, [2, 0]])  # side by side
