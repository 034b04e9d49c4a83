"""The Partition explainer: shap's values where shap is exact, exact Owen values, efficiency, errors."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

import deepshap
from deepshap.explainers.partition import Explainer, PartitionExplainer
from deepshap.maskers import Image
from tests.helpers.paths import EXAMPLES

K = 5


def photos(n: int = 2, height: int = 24, width: int = 32) -> np.ndarray:
    """Real photos (skimage's coffee and chelsea) resized, float64 in [0, 255] with fractional values."""
    import skimage.data

    pictures = [skimage.data.coffee(), skimage.data.chelsea()][:n]
    images = np.stack([cv2.resize(p, (width, height), interpolation=cv2.INTER_AREA) for p in pictures])
    return images.astype(np.float64) + np.random.default_rng(0).uniform(0, 0.5, images.shape)


def smooth_model(shape: tuple[int, ...], n_outputs: int = K, seed: int = 0):
    """A nonlinear float64 model of a numpy batch: tanh of random linear scores, plus a product term."""
    weights = np.random.default_rng(seed).normal(size=(int(np.prod(shape)), n_outputs))

    def f(x: np.ndarray) -> np.ndarray:
        z = x.reshape(len(x), -1) @ weights / (40 * np.sqrt(weights.shape[0]))
        return np.tanh(z) + 0.3 * np.tanh(z[:, :1]) * np.tanh(z[:, 1:2])

    return f


def picked(scores: np.ndarray, index: np.ndarray) -> np.ndarray:
    return np.take_along_axis(scores, index, axis=1)


def assert_efficient(explanation, f, X, rtol=1e-10):
    """sum of values + base value = f(x) for every image and explained output."""
    totals = explanation.values.reshape(len(X), -1, explanation.values.shape[-1]).astype(np.float64).sum(1)
    expected = picked(np.asarray(f(X), dtype=np.float64), explanation.output_indexes)
    np.testing.assert_allclose(totals + explanation.base_values, expected, rtol=rtol, atol=rtol)


# ---------------------------------------------------------------------------------------------- shap
@pytest.mark.parametrize(
    ("max_evals", "batch_size", "fixed_context"),
    [(120, 10, None), (300, 50, None), (77, 7, None), (40, 6, 0), (40, 6, 1)],
)
def test_agrees_with_shap_where_shap_is_exact(max_evals, batch_size, fixed_context):
    """Blur masker, real photos, no ties: the same tree, expansion order and values as shap 0.51."""
    import shap

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
    import shap

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


# ---------------------------------------------------------------------------------------------- exactness
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


# ---------------------------------------------------------------------------------------------- efficiency
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


def test_a_model_that_changes_its_input_in_place_only_sometimes_is_caught():
    """The full check of the first reuse passes (the model leaves the 2-image root batch alone); the
    row checked after every later batch catches it before a changed image is reused."""
    X = photos(1)
    f = smooth_model(X.shape[1:])

    def f_sometimes_in_place(x: np.ndarray) -> np.ndarray:
        if len(x) > 2:
            x -= 100.0
            return f(x + 100.0)
        return f(x)

    masker = Image("blur(4,4)", X[0].shape)
    options = {"max_evals": 200, "batch_size": 20, "silent": True}
    expected = Explainer(f, masker)(X, **options).values
    np.testing.assert_allclose(Explainer(f_sometimes_in_place, masker)(X, **options).values, expected)


def test_calls_in_several_threads_at_once_give_each_their_own_results():
    """One explainer, four threads: each call builds its batches in a buffer of its own."""
    from concurrent.futures import ThreadPoolExecutor

    X = photos(2)
    X = np.concatenate([X, X[:, ::-1], X[:, :, ::-1]])
    f = smooth_model(X.shape[1:])
    explainer = Explainer(f, Image("blur(4,4)", X[0].shape))
    options = {"max_evals": 300, "batch_size": 20, "silent": True}
    expected = [Explainer(f, Image("blur(4,4)", X[0].shape))(X[i : i + 1], **options) for i in range(4)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: explainer(X[i : i + 1], **options), range(4)))
    for result, reference in zip(results, expected, strict=True):
        np.testing.assert_array_equal(result.values, reference.values)


def test_as_many_images_as_channels_keep_one_output_axis():
    """(N, k) output indexes with N == C must not read as two output axes of values (N, H, W, C, k)."""
    for X in (photos(2, 8, 10)[[0, 1, 0]], photos(1, 8, 10)[..., :1]):
        f = smooth_model(X.shape[1:])
        explainer = Explainer(f, Image("blur(2,2)", X[0].shape))
        explanation = explainer(X, max_evals=40, outputs=[0, 2], silent=True)
        assert explanation.output_dims == (4,) and explanation[0].output_dims == (3,)
        assert explanation[..., 1].values.shape == X.shape
        deepshap.image_plot(explanation, show=False)


def test_a_bfloat16_torch_model_is_read_as_float32_and_explained_in_float64():
    import torch

    X = photos(1, 8, 8)
    f = smooth_model(X.shape[1:])
    explanation = Explainer(
        lambda x: torch.from_numpy(f(x)).to(torch.bfloat16), Image("blur(2,2)", X[0].shape)
    )(X, max_evals=40, silent=True)
    assert explanation.values.dtype == np.float64
    scores = torch.from_numpy(f(X)).to(torch.bfloat16).float().numpy()
    assert_efficient(explanation, lambda _: scores, X, rtol=1e-5)


@pytest.mark.parametrize("fixed_context", [None, 0])
def test_batches_known_in_advance_are_evaluated_together(fixed_context, monkeypatch):
    """The recursion's first batches take every queued node, so their images are known before the
    batch before them is evaluated: the model gets them together (never more than batch_size at once),
    and the values are those of evaluating batch by batch."""
    from deepshap.explainers import partition

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
    monkeypatch.setattr(partition, "_paths_ahead", lambda *args: [])
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


def test_torch_images_that_require_grad_and_grayscale_without_a_channel_axis():
    import torch

    X = photos(2)
    f = smooth_model(X.shape[1:])
    explainer = Explainer(f, Image("blur(4,4)", X[0].shape))
    from_tensor = explainer(torch.tensor(X, requires_grad=True), max_evals=30, silent=True)
    np.testing.assert_array_equal(from_tensor.values, explainer(X, max_evals=30, silent=True).values)
    gray = X[..., 0]
    with pytest.raises(ValueError, match=r"without a channel axis.*X\[\.\.\., None\]"):
        Explainer(smooth_model(gray.shape[1:]), Image(0.0, (*gray.shape[1:], 1)))(gray, silent=True)


def test_a_float32_torch_model_gets_float64_values_whose_numpy_sum_is_f_x():
    import torch

    X = photos(2).astype(np.float32)
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, stride=2), torch.nn.Tanh(), torch.nn.Flatten(), torch.nn.LazyLinear(6)
    )

    def f(x):  # returns a tensor that requires grad
        return net(torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2) / 255)

    explanation = Explainer(f, Image("inpaint_telea", X[0].shape))(X, max_evals=60, silent=True)
    assert explanation.values.dtype == np.float64  # as shap's
    scores = f(X).detach().numpy().astype(np.float64)
    totals = explanation.values.sum((1, 2, 3)) + explanation.base_values  # as users check efficiency
    np.testing.assert_allclose(totals, scores, rtol=1e-10, atol=1e-10)


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


# ---------------------------------------------------------------------------------------------- outputs
def test_output_selection_forms_and_names():
    X = photos(2)
    f = smooth_model(X.shape[1:])
    names = [f"class{i}" for i in range(K)]
    explainer = deepshap.Explainer(f, deepshap.maskers.Image("blur(4,4)", X[0].shape), output_names=names)
    assert isinstance(explainer, PartitionExplainer) and isinstance(explainer, deepshap.Explainer)
    scores = f(X)
    top = explainer(X, max_evals=40, outputs=deepshap.Explanation.argsort.flip[:2], silent=True)
    np.testing.assert_array_equal(top.output_indexes, np.argsort(-scores, axis=1)[:, :2])
    assert top.output_names.shape == (2, 2)
    assert top.output_names[1, 0] == names[int(np.argmax(scores[1]))]
    every = explainer(X, max_evals=40, silent=True)
    assert every.values.shape[-1] == K
    np.testing.assert_array_equal(every.output_indexes, np.tile(np.arange(K), (2, 1)))
    listed = explainer(X, max_evals=40, outputs=[3, 1], silent=True)
    np.testing.assert_array_equal(listed.output_indexes, [[3, 1], [3, 1]])
    # the queue ranks nodes by the largest effect over the explained outputs, whatever their order
    swapped = explainer(X, max_evals=40, outputs=[1, 3], silent=True)
    np.testing.assert_array_equal(listed.values, swapped.values[..., ::-1])
    per_image = explainer(X, max_evals=40, outputs=np.array([[0], [4]]), silent=True)
    assert per_image.output_names.tolist() == [["class0"], ["class4"]]
    assert_efficient(per_image, f, X)


def test_progress_bar(capsys):
    X = photos(2, 8, 8)
    f = smooth_model(X.shape[1:])
    explainer = Explainer(f, Image("blur(2,2)", X[0].shape))
    explainer(X, max_evals=10)
    assert "Partition explainer" in capsys.readouterr().err
    explainer(X, max_evals=10, silent=True)
    assert capsys.readouterr().err == ""


# ---------------------------------------------------------------------------------------------- errors
def test_bad_inputs_get_clear_errors():
    X = photos(2, 8, 8)
    f = smooth_model(X.shape[1:])
    explainer = Explainer(f, Image("blur(2,2)", X[0].shape))
    with pytest.raises(ValueError, match=r"masker was built for images of shape \(8, 8, 3\)"):
        explainer(photos(2, 8, 9), silent=True)
    with pytest.raises(ValueError, match=r"X is one image .* pass X\[None\]"):
        explainer(X[0], silent=True)
    with pytest.raises(ValueError, match="max_evals=3 is too small to evaluate the root"):
        explainer(X, max_evals=3, silent=True)
    with pytest.raises(ValueError, match="fixed_context must be None, 0 or 1"):
        explainer(X, fixed_context=2, silent=True)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        explainer(X, batch_size=0, silent=True)
    with pytest.raises(ValueError, match="out of range for a model with 5 outputs"):
        explainer(X, outputs=[7], silent=True)
    with pytest.raises(ValueError, match="output_names has 2 names but the model returns 5"):
        Explainer(f, Image("blur(2,2)", X[0].shape), output_names=["a", "b"])(X, silent=True)
    with pytest.raises(TypeError, match="maskers.Image"):
        Explainer(f, X[0])


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (lambda x: np.zeros((len(x), 2, 2)), r"returned shape \(2, 2, 2\)"),
        (lambda x: np.zeros((1, 3)), r"returned shape \(1, 3\) for a batch of 2"),
        (lambda x: np.full((len(x), 3), np.nan), "NaN or infinite"),
    ],
)
def test_bad_model_outputs_get_clear_errors(model, message):
    X = photos(1, 8, 8)
    with pytest.raises(ValueError, match=message):
        Explainer(model, Image("blur(2,2)", X[0].shape))(X, silent=True)


def test_a_model_returning_a_mapping_is_told_to_return_its_scores():
    X = photos(1, 8, 8)
    model = lambda x: {"logits": np.zeros((len(x), 3)), "hidden": None}  # noqa: E731
    with pytest.raises(TypeError, match=r"mapping with keys \['logits', 'hidden'\].*outputs.logits"):
        Explainer(model, Image("blur(2,2)", X[0].shape))(X, silent=True)


def test_outputs_that_change_size_are_an_error():
    X = photos(1, 8, 8)
    calls = []

    def f(x):
        calls.append(len(x))
        return np.ones((len(x), 3 if len(calls) == 1 else 4))

    with pytest.raises(ValueError, match="the same number of outputs every time"):
        Explainer(f, Image("blur(2,2)", X[0].shape))(X, silent=True)


# ---------------------------------------------------------------------------------------------- seed 001
@pytest.mark.slow
def test_seed_001_partition_runs_as_written(tmp_path):
    """The pretrained EfficientNet-Lite0 on real photos: coffee is an espresso, and the values add up."""
    import runpy

    main = runpy.run_path(str(EXAMPLES / "seed_001_partition.py"), run_name="example")["main"]
    result = main(str(tmp_path), evals=60, fine_evals=60)
    values = result["shap_values"]
    assert result["photo_names"] == ["chelsea", "coffee"]
    assert values.values.shape == (2, 224, 224, 3, 4) and values.output_names.shape == (2, 4)
    assert values.output_names[1, 0] == "espresso" and result["scores"][1].max() > 0.5
    np.testing.assert_array_equal(values.output_indexes, np.argsort(-result["scores"], axis=1)[:, :4])
    assert max(result["efficiency_gaps"]) < 1e-5
    assert (tmp_path / "inpaint_telea.png").is_file() and (tmp_path / "blur.png").is_file()


def test_images_explained_in_lanes_match_one_by_one_and_the_model_stays_on_the_callers_thread(monkeypatch):
    """With two images in flight the model still runs on the calling thread only (so torch.no_grad()
    around the call reaches it), and every image gets the values it gets on its own."""
    import threading

    import torch

    from deepshap.explainers import partition

    X = np.concatenate([photos(2), photos(2)[:, ::-1], photos(1)[:, :, ::-1]])
    f = smooth_model(X.shape[1:])
    callers, grad_enabled = set(), set()

    def model(x: np.ndarray) -> np.ndarray:
        callers.add(threading.get_ident())
        grad_enabled.add(torch.is_grad_enabled())
        return f(x)

    options = {"max_evals": 150, "batch_size": 16, "outputs": deepshap.Explanation.argsort.flip[:2]}
    explainer = Explainer(model, Image("blur(4,4)", X[0].shape))
    with torch.no_grad():
        together = explainer(X, silent=True, **options)
    assert callers == {threading.get_ident()} and grad_enabled == {False}
    monkeypatch.setattr(partition, "_LANES", 1)
    alone = [explainer(X[i : i + 1], silent=True, **options) for i in range(len(X))]
    np.testing.assert_array_equal(together.values, np.concatenate([e.values for e in alone]))
    np.testing.assert_array_equal(together.base_values, np.concatenate([e.base_values for e in alone]))
    np.testing.assert_array_equal(together.output_indexes, np.concatenate([e.output_indexes for e in alone]))
    assert_efficient(together, f, X)


def test_a_model_that_reuses_its_output_memory_gets_the_right_values():
    """The scores are copied at once: with two images in flight the model runs again before a lane
    reads its last scores, and a model returning views of one preallocated array would overwrite them."""
    X = photos(4, 12, 12)
    f = smooth_model(X.shape[1:])
    reused = np.empty((64, K))

    def model(x: np.ndarray) -> np.ndarray:
        reused[: len(x)] = f(x)
        return reused[: len(x)]

    options = {"max_evals": 120, "batch_size": 16, "silent": True}
    explanation = Explainer(model, Image("blur(3,3)", X[0].shape))(X, **options)
    expected = Explainer(f, Image("blur(3,3)", X[0].shape))(X, **options)
    np.testing.assert_array_equal(explanation.values, expected.values)
    assert_efficient(explanation, f, X)
