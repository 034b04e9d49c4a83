"""Names shap's users call that deepshap provides too: Image.save / load, Explanation.hstack and
op_history, the deepshap.explainers namespace, deepshap.current.utils.assert_import."""

from __future__ import annotations

import io
import tempfile

import numpy as np
import pytest

import deepshap
import deepshap.current
from deepshap.explanation import ExplanationMismatchError, OpHistoryItem


@pytest.mark.parametrize(
    "mask_value", ["inpaint_telea", "inpaint_ns", "blur(3,3)", 0.5, "background"], ids=str
)
def test_image_masker_round_trips_through_a_file(mask_value) -> None:
    rng = np.random.default_rng(0)
    image = rng.random((12, 10, 3))
    if mask_value == "background":
        mask_value = rng.random((12, 10, 3))
    masker = deepshap.maskers.Image(mask_value, image.shape, partition="superpixels", n_segments=6)
    with tempfile.TemporaryFile() as file:
        masker.save(file)
        file.seek(0)
        loaded = deepshap.maskers.Image.load(file)
    assert (loaded.input_shape, loaded.partition, loaded.n_segments) == ((12, 10, 3), "superpixels", 6)
    keep = rng.random(120) < 0.5
    np.testing.assert_array_equal(loaded(keep, image)[0], masker(keep, image)[0])


def test_several_maskers_in_one_stream_and_a_wrong_position() -> None:
    stream = io.BytesIO()
    deepshap.maskers.Image("blur(2,2)", (4, 4, 1)).save(stream)
    deepshap.maskers.Image(0.0, (6, 6, 3)).save(stream)
    stream.seek(0)
    first, second = deepshap.maskers.Image.load(stream), deepshap.maskers.Image.load(stream)
    assert first.mask_value == "blur(2,2)" and second.input_shape == (6, 6, 3)
    with pytest.raises(ValueError, match="seek"):
        deepshap.maskers.Image.load(stream)  # at the end now


def _explanation(n_features: int, base: float = 0.25, seed: int = 0) -> deepshap.Explanation:
    rng = np.random.default_rng(seed)
    return deepshap.Explanation(
        values=rng.normal(size=(5, n_features)),
        base_values=np.full(5, base),
        data=rng.normal(size=(5, n_features)),
        feature_names=[f"f{seed}_{i}" for i in range(n_features)],
    )


def test_hstack_joins_features_of_the_same_rows() -> None:
    left, right = _explanation(3), _explanation(2, seed=1)
    joined = left.hstack(right)
    np.testing.assert_array_equal(joined.values, np.hstack([left.values, right.values]))
    np.testing.assert_array_equal(joined.data, np.hstack([left.data, right.data]))
    assert joined.feature_names == [*left.feature_names, *right.feature_names]
    np.testing.assert_array_equal(joined.base_values, left.base_values)
    assert joined[:, "f1_0"].values.tolist() == right.values[:, 0].tolist()


def test_hstack_refuses_other_rows_or_base_values() -> None:
    with pytest.raises(ExplanationMismatchError, match="numbers of rows"):
        _explanation(3).hstack(_explanation(3)[:4])
    with pytest.raises(AssertionError):  # what shap raises there
        _explanation(3).hstack(_explanation(3)[:4])
    with pytest.raises(ValueError, match="base values"):
        _explanation(3).hstack(_explanation(2, base=0.5))


def test_op_history_records_each_operation() -> None:
    explanation = deepshap.Explanation(np.arange(-18.0, 17.0).reshape(7, 5))
    result = (explanation.abs.sample(5, random_state=0).flip[..., :3].mean(axis=0) * 2) / 4
    history = result.op_history
    assert all(isinstance(item, OpHistoryItem) for item in history)
    names = [item.name for item in history]
    assert names == ["abs", "__getitem__", "flip", "__getitem__", "mean", "__mul__", "__truediv__"]
    assert history[4].collapsed_instances and history[4].prev_shape == (5, 3)
    assert history[5].args == (2,) and history[6].args == (4,)
    assert explanation.op_history == []  # the original is unchanged
    assert deepshap.Explanation(result).op_history == history  # a copy keeps it


def test_adding_a_number_stays_refused() -> None:
    explanation = deepshap.Explanation(np.ones((2, 3)), base_values=np.zeros(2))
    with pytest.raises(TypeError, match="sum to f"):
        explanation += 2


def test_assert_import() -> None:
    deepshap.current.utils.assert_import("numpy")
    with pytest.raises(ImportError, match="no_such_package_here"):
        deepshap.current.utils.assert_import("no_such_package_here")


def test_the_current_dialect_has_every_public_name_of_deepshap() -> None:
    import deepshap
    import deepshap.current

    missing = [name for name in deepshap.__all__ if name not in deepshap.current.__all__]
    assert not missing, missing
    assert deepshap.current.metrics is deepshap.metrics
    assert deepshap.current.UnsupportedOperationError is deepshap.UnsupportedOperationError
