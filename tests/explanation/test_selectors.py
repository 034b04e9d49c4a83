"""Explanation's lazy selectors (OpChain): built on the class, replayed on an instance, as in shap."""

from __future__ import annotations

import numpy as np
import pytest

from deepshap.explanation import Explanation, OpChain
from tests.helpers.explanations import coded_explanation


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


def test_agrees_with_shap_where_shap_works() -> None:
    shap = pytest.importorskip("shap")

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
