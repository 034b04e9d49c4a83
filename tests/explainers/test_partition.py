"""The Partition explainer's values: shap's where shap is exact, exact Owen values at a full budget,
efficiency whatever the fill, tree, scale or budget, fresh results from a reused explainer."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import deepshap
from deepshap.explainers.partition import Explainer
from deepshap.maskers import Image
from tests.helpers.images import photos
from tests.helpers.partition import K, assert_efficient, smooth_model


@pytest.mark.parametrize(
    ("max_evals", "batch_size", "fixed_context"),
    [(120, 10, None), (300, 50, None), (77, 7, None), (40, 6, 0), (40, 6, 1)],
)
def test_agrees_with_shap_where_shap_is_exact(max_evals, batch_size, fixed_context):
    """Blur masker, real photos, no ties: the same tree, expansion order and values as shap 0.51."""
    shap = pytest.importorskip("shap")

    X = photos()
    f = smooth_model(X.shape[1:])
    # one image per shap masker: shap caches the blur under the id() of a temporary view of the image,
    # and when the next image's view lands at the same address it blurs with the previous image's blur
    theirs = [
        shap.Explainer(f, shap.maskers.Image("blur(5,5)", X[0].shape))(
            X[i : i + 1],
            max_evals=max_evals,
            batch_size=batch_size,
            fixed_context=fixed_context,
            outputs=shap.Explanation.argsort.flip[:3],
        )
        for i in range(len(X))
    ]
    ours = Explainer(f, Image("blur(5,5)", X[0].shape))(
        X, max_evals=max_evals, batch_size=batch_size, fixed_context=fixed_context,
        outputs=deepshap.Explanation.argsort.flip[:3], silent=True,
    )  # fmt: skip
    # shap would split single pixels into channels, deepshap keeps channels together: stay above that
    n_leaves = X.shape[1] * X.shape[2]
    assert all(h[:n_leaves].nnz == 0 for h in ours.hierarchical_values)
    their_values = np.concatenate([e.values for e in theirs])
    their_base = np.concatenate([e.base_values for e in theirs])
    assert ours.values.shape == their_values.shape == (2, 24, 32, 3, 3)
    np.testing.assert_allclose(ours.values, their_values, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(ours.base_values, their_base, rtol=1e-12)
    assert np.abs(ours.values).max() > 1e-4


def test_shaps_inpainting_misses_efficiency_where_deepshap_has_it():
    """shap inpaints a uint8 cast of the whole image: its values add up to f(round down(x)), not f(x)."""
    shap = pytest.importorskip("shap")

    X = photos(1)
    f = smooth_model(X.shape[1:])
    top = [int(np.argmax(f(X)[0]))]
    theirs = shap.Explainer(f, shap.maskers.Image("inpaint_telea", X[0].shape))(
        X, max_evals=60, batch_size=20, outputs=np.array(top)
    )
    ours = Explainer(f, Image("inpaint_telea", X[0].shape))(
        X, max_evals=60, batch_size=20, outputs=top, silent=True
    )
    assert_efficient(ours, f, X)
    shap_total = theirs.values.sum((1, 2, 3)) + theirs.base_values
    shap_miss = np.abs(shap_total - f(X)[:, top]).max()
    assert shap_miss > 1e-4 and np.abs(shap_total - f(np.floor(X))[:, top]).max() < 1e-9 * shap_miss


def brute_force_owen(tree, value, n_outputs):
    """Owen values of the leaves by enumeration: each sibling along the path is in or out with prob 1/2."""
    phi = {}

    def walk(node, siblings):
        if tree.is_leaf(node):
            total = np.zeros(n_outputs)
            for bits in itertools.product((False, True), repeat=len(siblings)):
                context = [s for s, b in zip(siblings, bits, strict=True) if b]
                total += value([*context, node]) - value(context)
            phi[node] = total / 2 ** len(siblings)
            return
        left, right = int(tree.left[node]), int(tree.right[node])
        walk(left, [*siblings, right])
        walk(right, [*siblings, left])

    walk(tree.root, [])
    return phi


@pytest.mark.parametrize("partition", ["axis", "superpixels"])
def test_full_budget_gives_exact_owen_values(partition):
    X = photos(1, 6, 8) if partition == "axis" else photos(1, 24, 24)
    f = smooth_model(X.shape[1:], n_outputs=3)
    masker = Image(17.0, X[0].shape, partition=partition, n_segments=12)
    tree = masker.tree(X[0])
    filler = masker.filler(X[0])
    assert 4 <= tree.n_leaves <= 48

    def value(nodes):
        return f(filler.build(tree.masks([nodes])))[0]

    phi = brute_force_owen(tree, value, 3)
    explanation = Explainer(f, masker)(X, max_evals=100_000, silent=True)
    expected = np.zeros(explanation.values.shape[1:])
    for leaf, owen in phi.items():
        tree.fill(expected, leaf, owen / (tree.size[leaf] * X.shape[-1]))
    np.testing.assert_allclose(explanation.values[0], expected, rtol=1e-9, atol=1e-14)


def test_linear_model_gets_its_exact_contributions():
    """For a linear model Owen values are Shapley values: w . (x - fill) per pixel, at any tree depth."""
    X = photos(1, 8, 8)
    weights = np.random.default_rng(1).normal(size=(8 * 8 * 3, 2))

    def f(x):
        return x.reshape(len(x), -1) @ weights

    masker = Image("blur(3,3)", X[0].shape)
    explanation = Explainer(f, masker)(X, max_evals=10_000, silent=True)
    blurred = masker.filler(X[0]).fill
    contributions = ((X[0] - blurred).reshape(-1, 1) * weights).reshape(8, 8, 3, 2).sum(2)
    np.testing.assert_allclose(explanation.values[0].sum(2), contributions, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    ("mask_value", "partition", "scale"),
    [
        ("blur(8,8)", "axis", 255.0),
        ("inpaint_telea", "axis", 1.0),  # an image in [0, 1]
        ("inpaint_ns", "superpixels", 255.0),
        (0.0, "superpixels", 1.0),
        ("background", "axis", 255.0),
    ],
)
@pytest.mark.parametrize("max_evals", [4, 40, 150])
def test_values_add_up_to_the_model_output(mask_value, partition, scale, max_evals):
    X = photos(2) * scale / 255.0
    if mask_value == "background":
        mask_value = X[1][::-1].copy()
    f = smooth_model(X.shape[1:])
    masker = Image(mask_value, X[0].shape, partition=partition, n_segments=30)
    explanation = Explainer(f, masker)(X, max_evals=max_evals, batch_size=10, silent=True)
    assert explanation.values.shape == (*X.shape, K)
    assert_efficient(explanation, f, X)
    fully_masked = masker.filler(X[0]).build(np.zeros((1, *X.shape[1:3]), dtype=bool))
    np.testing.assert_allclose(explanation.base_values[0], f(fully_masked)[0], rtol=1e-12)
    for image, hierarchical in enumerate(explanation.hierarchical_values):
        # the values left on the tree's nodes add up the same way
        np.testing.assert_allclose(
            hierarchical.sum(axis=0), f(X[image : image + 1])[0] - explanation.base_values[image], rtol=1e-9
        )


@pytest.mark.parametrize("mask_value", ["blur(5,5)", "inpaint_telea"])
def test_an_explainer_reused_across_images_and_calls_gives_fresh_results(mask_value):
    """The batch buffer goes from image to image and call to call: nothing of one image leaks into the
    next, also when the model changes its input in place (as preprocess_input without a copy does)."""
    X = photos(2)
    f = smooth_model(X.shape[1:])

    def f_in_place(x: np.ndarray) -> np.ndarray:
        x -= 100.0
        return f(x + 100.0)

    masker = Image(mask_value, X[0].shape)
    options = {"max_evals": 60, "batch_size": 10, "silent": True}
    fresh = [Explainer(f, masker)(X[i : i + 1], **options).values[0] for i in range(2)]
    for model in (f, f_in_place):
        reused = Explainer(model, masker)
        first, second = reused(X[::-1], **options), reused(X, **options)
        np.testing.assert_allclose(first.values, np.stack(fresh[::-1]), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(second.values, np.stack(fresh), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("fixed_context", [None, 0])
def test_batches_known_in_advance_are_evaluated_together(fixed_context, monkeypatch):
    """The recursion's first batches take every queued node, so their images are known before the
    batch before them is evaluated: the model gets them together (never more than batch_size at once),
    and the values are those of evaluating batch by batch."""
    from deepshap.explainers import _owen_recursion

    X = photos(1)
    f = smooth_model(X.shape[1:])

    def run() -> tuple[list[int], np.ndarray]:
        sizes: list[int] = []

        def counting(x: np.ndarray) -> np.ndarray:
            sizes.append(len(x))
            return f(x)

        explainer = Explainer(counting, Image("blur(5,5)", X[0].shape))
        values = explainer(X, max_evals=200, batch_size=50, fixed_context=fixed_context, silent=True).values
        return sizes, values

    together, values = run()
    monkeypatch.setattr(_owen_recursion, "_paths_ahead", lambda *args: [])
    one_by_one, expected = run()
    assert sum(together) == sum(one_by_one) == 200 and max(together) <= 50
    if fixed_context is None:
        assert together[:3] == [2, 42, 50] and one_by_one[:5] == [2, 2, 8, 32, 50]
    assert len(together) < len(one_by_one)
    np.testing.assert_allclose(values, expected, rtol=1e-12, atol=1e-16)


@pytest.mark.parametrize("fixed_context", [0, 1])
def test_fixed_context_keeps_efficiency(fixed_context):
    X = photos(1)
    f = smooth_model(X.shape[1:])
    explanation = Explainer(f, Image("blur(4,4)", X[0].shape))(
        X, max_evals=90, fixed_context=fixed_context, silent=True
    )
    assert_efficient(explanation, f, X)


@pytest.mark.parametrize("fixed_context", [0, 1])
def test_a_numpy_integer_fixed_context_is_the_same_as_the_int(fixed_context):
    X = photos(1)
    f = smooth_model(X.shape[1:])
    explainer = Explainer(f, Image("blur(4,4)", X[0].shape))
    plain = explainer(X, max_evals=60, fixed_context=fixed_context, silent=True).values
    numpy_int = explainer(X, max_evals=60, fixed_context=np.arange(2)[fixed_context], silent=True).values
    np.testing.assert_array_equal(numpy_int, plain)


def test_values_too_large_for_float64_keep_the_models_precision_with_a_warning(monkeypatch):
    from deepshap.explainers import partition

    X = photos(1, 8, 8)
    f = smooth_model(X.shape[1:])
    monkeypatch.setattr(partition, "_FLOAT64_VALUES_BYTES", 8 * 8 * 3 * K * 8 - 1)  # just too small
    with pytest.warns(UserWarning, match=r"dtype=np.float64"):
        explanation = Explainer(lambda x: f(x).astype(np.float32), Image("blur(2,2)", X[0].shape))(
            X, max_evals=40, silent=True
        )
    assert explanation.values.dtype == np.float32
    assert_efficient(explanation, f, X, rtol=1e-5)
