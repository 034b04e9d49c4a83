"""Custom ``torch.autograd.Function``s and ``torch.no_grad()`` blocks in a model's forward.

DeepExplainer sees the operations inside such a forward only with gradients disabled, so their rules
cannot reach the input; the Function's own backward (a gradient) is not a DeepLIFT multiplier. It must
refuse them by name, and explain them exactly once the Function is given a rule.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import deepshap  # noqa: E402
from deepshap.errors import AdditivityError, UnsupportedOperationError  # noqa: E402

# loaded here, so that a registration routes the Function's apply at once in every test
from deepshap.frameworks.pytorch import registry  # noqa: E402, F401


class SoftClip(torch.autograd.Function):
    """``limit * tanh(x / limit)`` with a hand-written backward (the old ctx-in-forward style)."""

    @staticmethod
    def forward(ctx, x, limit):  # noqa: ANN001, ANN205
        ctx.save_for_backward(x)
        ctx.limit = limit
        return limit * torch.tanh(x / limit)

    @staticmethod
    def backward(ctx, grad):  # noqa: ANN001, ANN205
        (x,) = ctx.saved_tensors
        return grad * (1 - torch.tanh(x / ctx.limit) ** 2), None


class Cube(torch.autograd.Function):
    """``x ** 3`` in the setup_context style (forward without ctx)."""

    @staticmethod
    def forward(x):  # noqa: ANN001, ANN205
        return x**3

    @staticmethod
    def setup_context(ctx, inputs, output):  # noqa: ANN001, ANN205
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, grad):  # noqa: ANN001, ANN205
        (x,) = ctx.saved_tensors
        return 3 * x**2 * grad


class Net(torch.nn.Module):
    def __init__(self, function: str) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = torch.nn.Linear(5, 3)
        self.function = function

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = 2 * self.linear(x)
        h = SoftClip.apply(h, 1.5) if self.function == "softclip" else Cube.apply(h)
        return h[:, :2] - h[:, 2:]


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(8, 5, generator=g), 2 * torch.randn(3, 5, generator=g)


@pytest.mark.parametrize("function", ["softclip", "cube"])
def test_an_unregistered_function_is_refused_by_name(function: str) -> None:
    bg, X = _data()
    name = "SoftClip" if function == "softclip" else "Cube"
    with pytest.raises(UnsupportedOperationError, match=rf"custom autograd Function .*\.{name}\b.*register"):
        deepshap.DeepExplainer(Net(function), bg).shap_values(X)


@pytest.mark.parametrize(
    ("function", "rule"),
    [
        ("softclip", "rescale"),
        ("softclip", lambda x, limit: limit * torch.tanh(x / limit)),
        ("cube", "rescale"),
        ("cube", lambda x: x * x * x),
    ],
    ids=["softclip-rescale", "softclip-decomposition", "cube-rescale", "cube-decomposition"],
)
def test_a_registered_function_is_explained_by_its_rule(function: str, rule: object) -> None:
    """Each Function's unit applies to one linear combination of the features, so its multiplier is the
    secant of the Function between sample and reference times the linear weights: the values must be
    that split, whichever the registration (a kind or a decomposition)."""
    bg, X = _data()
    model = Net(function).eval()
    operation = SoftClip if function == "softclip" else Cube
    with deepshap.rules.registered(operation, rule):
        explainer = deepshap.DeepExplainer(model, bg)
        values = np.stack(explainer.shap_values(X), -1)
        with torch.no_grad():  # the explainer turns gradients back on for its passes
            np.testing.assert_allclose(np.stack(explainer.shap_values(X), -1), values, rtol=1e-6, atol=1e-8)
    gap = (model(X) - model(bg).mean(0)).detach().numpy()
    np.testing.assert_allclose(values.sum(1), gap, rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        pre_x, pre_b = 2 * model.linear(X), 2 * model.linear(bg)
        post = SoftClip.apply if function == "softclip" else Cube.apply
        args = (1.5,) if function == "softclip" else ()
        secant = (post(pre_x[:, None], *args) - post(pre_b[None], *args)) / (pre_x[:, None] - pre_b[None])
        weight = 2 * model.linear.weight  # (3, 5)
        contrib = secant[..., None] * weight[None, None] * (X[:, None, None] - bg[None, :, None])
        per_unit = contrib.mean(1).numpy()  # (N, 3 units, 5 features)
    expected = per_unit[:, :2] - per_unit[:, 2:]
    np.testing.assert_allclose(values, expected.transpose(0, 2, 1), rtol=1e-4, atol=1e-6)


def test_registration_leaves_the_function_as_it_was() -> None:
    bg, X = _data()
    model = Net("softclip")
    before = model(X)
    with deepshap.rules.registered(SoftClip, "rescale"):
        leaf = X.clone().requires_grad_(True)
        during = model(leaf)
        during.sum().backward()  # the Function's own backward still runs outside an explanation
        assert leaf.grad is not None and torch.isfinite(leaf.grad).all()
    assert torch.equal(before, during.detach())
    assert "apply" not in vars(SoftClip)
    with pytest.raises(UnsupportedOperationError, match="SoftClip"):
        deepshap.DeepExplainer(model, bg).shap_values(X)


@pytest.mark.parametrize("block", [torch.no_grad, torch.inference_mode])
def test_a_no_grad_block_on_the_input_is_refused(block: type) -> None:
    class Normalised(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(5, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.linear(x)
            with block():
                scale = h.abs().amax(1, keepdim=True)
            return h / scale

    bg, X = _data()
    with pytest.raises(UnsupportedOperationError, match=rf"gradients disabled \(.*{block.__name__}\(\)"):
        deepshap.DeepExplainer(Normalised(), bg).shap_values(X)


def test_a_no_grad_block_on_constants_is_fine() -> None:
    class Offset(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(5, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                offset = self.linear.bias.abs().sum()
            return torch.relu(self.linear(x)) + offset

    bg, X = _data()
    model = Offset().eval()
    explainer = deepshap.DeepExplainer(model, bg)
    values = np.stack(explainer.shap_values(X), -1)
    np.testing.assert_allclose(
        values.sum(1), (model(X) - model(bg).mean(0)).detach().numpy(), rtol=1e-4, atol=1e-6
    )


def test_registering_a_function_leaves_its_subclasses_their_own_forward() -> None:
    """A subclass inherits the registered class's ``apply``: it must still run its own forward, and
    without a registration of its own be refused by name."""

    class Squash(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):  # noqa: ANN001, ANN205
            return torch.tanh(x)

        @staticmethod
        def backward(ctx, grad):  # noqa: ANN001, ANN205
            return grad

    class Stretch(Squash):
        @staticmethod
        def forward(ctx, x):  # noqa: ANN001, ANN205
            return 10 * x

    class Stretched(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return Stretch.apply(x)

    x = torch.linspace(-1, 1, 5)
    bg, X = _data()
    with deepshap.rules.registered(Squash, "rescale"):
        torch.testing.assert_close(Stretch.apply(x), 10 * x)
        torch.testing.assert_close(Squash.apply(x), torch.tanh(x))
        with pytest.raises(UnsupportedOperationError, match=r"Function .*\.Stretch\b"):
            deepshap.DeepExplainer(Stretched(), bg).shap_values(X)
    torch.testing.assert_close(Stretch.apply(x), 10 * x)


def test_registered_restores_an_earlier_registration_of_a_function() -> None:
    bg, X = _data()
    model = Net("cube").eval()
    deepshap.rules.register(Cube, lambda x: x * x * x)
    try:
        with deepshap.rules.registered(Cube, "linear"):  # wrong on purpose: the Function's backward
            with pytest.raises(AdditivityError):
                deepshap.DeepExplainer(model, bg).shap_values(X)
        values = np.stack(deepshap.DeepExplainer(model, bg).shap_values(X), -1)
        gap = (model(X) - model(bg).mean(0)).detach().numpy()
        np.testing.assert_allclose(values.sum(1), gap, rtol=1e-4, atol=1e-5)
    finally:
        deepshap.rules.unregister(Cube)
    assert "apply" not in vars(Cube)


def test_a_function_with_several_outputs_needs_a_decomposition() -> None:
    class TanhAndSigmoid(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):  # noqa: ANN001, ANN205
            return torch.tanh(x), torch.sigmoid(x)

        @staticmethod
        def backward(ctx, grad_tanh, grad_sigmoid):  # noqa: ANN001, ANN205
            return grad_tanh + grad_sigmoid

    class Both(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(5, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            a, b = TanhAndSigmoid.apply(self.linear(x))
            return a + b

    bg, X = _data()
    model = Both().eval()
    with deepshap.rules.registered(TanhAndSigmoid, "rescale"):
        several = r"TanhAndSigmoid\.apply returns a tuple.*decomposition"
        with pytest.raises(UnsupportedOperationError, match=several):
            deepshap.DeepExplainer(model, bg).shap_values(X)
    with deepshap.rules.registered(TanhAndSigmoid, lambda x: (torch.tanh(x), torch.sigmoid(x))):
        values = np.stack(deepshap.DeepExplainer(model, bg).shap_values(X), -1)
    gap = (model(X) - model(bg).mean(0)).detach().numpy()
    np.testing.assert_allclose(values.sum(1), gap, rtol=1e-4, atol=1e-5)


def test_a_no_grad_block_may_take_shapes_and_masks_of_the_input() -> None:
    """Shapes, and masks computed from the input (which carry it by their tag, not by gradients), are
    as good under ``torch.no_grad()`` as outside it: the values equal the same model's without the block."""

    class Gated(torch.nn.Module):
        def __init__(self, no_grad: bool) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.linear = torch.nn.Linear(5, 3)
            self.no_grad = no_grad

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.linear(x)
            with torch.no_grad() if self.no_grad else torch.enable_grad():
                mask = h > 0
                position = torch.arange(h.shape[1], dtype=h.dtype)
            return torch.where(mask, h, 0.1 * h) + position

    bg, X = _data()
    plain = np.stack(deepshap.DeepExplainer(Gated(no_grad=False), bg).shap_values(X), -1)
    blocked = np.stack(deepshap.DeepExplainer(Gated(no_grad=True), bg).shap_values(X), -1)
    np.testing.assert_allclose(blocked, plain, rtol=1e-6, atol=1e-7)


class StraightThrough(torch.autograd.Function):
    """``tanh`` forward, identity backward: a gradient that GradientExplainer must keep using."""

    @staticmethod
    def forward(ctx, x):  # noqa: ANN001, ANN205
        return torch.tanh(x)

    @staticmethod
    def backward(ctx, grad):  # noqa: ANN001, ANN205
        return grad


def test_gradient_explainer_keeps_a_registered_functions_backward() -> None:
    class Through(torch.nn.Module):
        def __init__(self, function: bool) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.linear = torch.nn.Linear(5, 2)
            self.function = function

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.linear(x)
            return StraightThrough.apply(h) if self.function else h

    bg, X = _data()

    def gradients(model: torch.nn.Module) -> np.ndarray:
        values = deepshap.GradientExplainer(model, bg).shap_values(X, nsamples=20, rseed=0)
        return np.stack(values, -1)

    linear = gradients(Through(function=False))  # the identity backward: the linear layer's gradient
    np.testing.assert_allclose(gradients(Through(function=True)), linear, rtol=1e-6, atol=1e-7)
    with deepshap.rules.registered(StraightThrough, "rescale"):
        np.testing.assert_allclose(gradients(Through(function=True)), linear, rtol=1e-6, atol=1e-7)


class Scale(torch.autograd.Function):
    """``x * factor`` with a keyword argument (setup_context style): linear, its backward exact."""

    @staticmethod
    def forward(x, factor=1.0):  # noqa: ANN001, ANN205
        return x * factor

    @staticmethod
    def setup_context(ctx, inputs, output):  # noqa: ANN001, ANN205
        ctx.factor = inputs[1]

    @staticmethod
    def backward(ctx, grad):  # noqa: ANN001, ANN205
        return grad * ctx.factor, None


def test_a_linear_function_registered_linear_is_explained_by_its_backward() -> None:
    class Scaled(torch.nn.Module):
        def __init__(self, function: bool) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.linear = torch.nn.Linear(5, 3)
            self.function = function

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = Scale.apply(self.linear(x), factor=-2.0) if self.function else -2.0 * self.linear(x)
            return torch.relu(h)

    bg, X = _data()
    expected = np.stack(deepshap.DeepExplainer(Scaled(function=False), bg).shap_values(X), -1)
    with deepshap.rules.registered(Scale, "linear"):
        values = np.stack(deepshap.DeepExplainer(Scaled(function=True), bg).shap_values(X), -1)
    np.testing.assert_allclose(values, expected, rtol=1e-5, atol=1e-6)


class Checkpointed(torch.nn.Module):
    """A GELU block run through ``torch.utils.checkpoint``."""

    def __init__(self, reentrant: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.inner, self.head = torch.nn.Linear(5, 8), torch.nn.Linear(8, 2)
        self.reentrant = reentrant

    def block(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.gelu(self.inner(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from torch.utils.checkpoint import checkpoint

        return self.head(checkpoint(self.block, x, use_reentrant=self.reentrant))


def test_non_reentrant_checkpointing_is_explained_as_its_block() -> None:
    """It runs the block with gradients on, so each operation of the block gets its rule."""
    bg, X = _data()
    model = Checkpointed(reentrant=False).eval()
    values = np.stack(deepshap.DeepExplainer(model, bg).shap_values(X), -1)
    with torch.no_grad():
        gap = (model(X) - model(bg).mean(0)).numpy()
    np.testing.assert_allclose(values.sum(1), gap, rtol=1e-4, atol=1e-6)


def test_reentrant_checkpointing_is_refused_with_what_to_do() -> None:
    """It hides the block inside a Function with gradients off; the message says how to avoid it."""
    bg, X = _data()
    with pytest.raises(UnsupportedOperationError, match="activation checkpointing.*use_reentrant=False"):
        deepshap.DeepExplainer(Checkpointed(reentrant=True).eval(), bg).shap_values(X)
