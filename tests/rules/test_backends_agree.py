"""One rule, two backends: the PyTorch and TensorFlow rules give the same multipliers on the same pair,
equal to the rule's definition (written once in src/deepshap/rules), also for a float32 softmax whose
logits all move far."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
tf = pytest.importorskip("tensorflow")
F = torch.nn.functional

from deepshap.frameworks.pytorch.pairing import Refs  # noqa: E402
from deepshap.frameworks.pytorch.registry import RULES  # noqa: E402
from tests.helpers.rules import (  # noqa: E402
    DTYPES,
    close,
    max_rule,
    pair,
    secant,
    shapley,
    shifted_logits,
    softmax_rule,
    tf_rule,
    torch_rule,
    unwindows,
    windows,
)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize(
    "torch_fn, tf_fn",
    [
        (torch.matmul, tf.matmul),
        (torch.bmm, tf.matmul),
        (functools.partial(torch.einsum, "bij,bjk->bik"), functools.partial(tf.einsum, "bij,bjk->bik")),
    ],
    ids=["matmul", "bmm", "einsum"],
)
def test_bilinear_maps_split_like_shapley_values_on_both_backends(
    torch_fn: Any, tf_fn: Any, dtype: Any
) -> None:
    """A bilinear map's rule: the sum of each operand's contributions over every output is its Shapley
    value (enumerated), and both backends give the same multipliers."""
    a, b = pair((2, 3, 4)), pair((2, 4, 2))
    func = torch_fn.func if isinstance(torch_fn, functools.partial) else torch_fn
    extra = torch_fn.args if isinstance(torch_fn, functools.partial) else ()
    if extra:  # einsum(equation, a, b): the equation comes first
        tdtype = torch.float32 if dtype == np.float32 else torch.float64
        x = [torch.tensor(t, dtype=tdtype, requires_grad=True) for t in (a[0], b[0])]
        out = RULES[func].apply(
            func,
            "einsum",
            [extra[0], *x],
            {},
            Refs(x, [torch.tensor(t, dtype=tdtype) for t in (a[1], b[1])], 1, 1),
        )
        m_torch = [g.numpy() for g in torch.autograd.grad(out.sum(), x)]
    else:
        _, m_torch = torch_rule(func, [a[0], b[0]], [a[1], b[1]], dtype)
    _, m_tf = tf_rule(tf_fn, [a[0], b[0]], [a[1], b[1]], dtype)
    phi_a, phi_b = shapley(lambda u, v: np.matmul(u, v).sum(), a, b)
    for m_t, m_k, (x, r), phi in zip(m_torch, m_tf, (a, b), (phi_a, phi_b), strict=True):
        close((m_t * (x - r)).sum(), phi, dtype)
        close(m_t, m_k, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_max_pooling_and_max_reductions_agree_between_backends(dtype: Any) -> None:
    x, r = pair((1, 2, 4, 4))
    _, (m_torch,) = torch_rule(F.max_pool2d, [x], [r], dtype, 2)
    nhwc = (x.transpose(0, 2, 3, 1), r.transpose(0, 2, 3, 1))
    _, (m_tf,) = tf_rule(lambda t: tf.nn.max_pool2d(t, 2, 2, "VALID"), [nhwc[0]], [nhwc[1]], dtype)
    close(m_torch, m_tf.transpose(0, 3, 1, 2), dtype)
    close(m_torch, unwindows(max_rule(windows(x), windows(r))), dtype)
    x, r = pair((3, 5))
    for torch_fn, tf_fn, sign in ((torch.amax, tf.reduce_max, 1.0), (torch.amin, tf.reduce_min, -1.0)):
        _, (m_torch,) = torch_rule(torch_fn, [x], [r], dtype, 1)
        _, (m_tf,) = tf_rule(lambda t, fn=tf_fn: fn(t, axis=1), [x], [r], dtype)
        close(m_torch, m_tf, dtype)
        close(m_torch, max_rule(sign * x, sign * r), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
def test_softmax_agrees_between_backends_and_with_its_definition(log: bool, dtype: Any) -> None:
    x, r = pair((3, 5))
    torch_fn, tf_fn = (F.log_softmax, tf.nn.log_softmax) if log else (F.softmax, tf.nn.softmax)
    _, (m_torch,) = torch_rule(torch_fn, [x], [r], dtype, -1)
    _, (m_tf,) = tf_rule(tf_fn, [x], [r], dtype)
    close(m_torch, softmax_rule(x, r, log), dtype)
    close(m_tf, softmax_rule(x, r, log), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize(
    "torch_fn, tf_fn, positive",
    [
        (torch.relu, tf.nn.relu, False),
        (torch.sigmoid, tf.sigmoid, False),
        (torch.tanh, tf.tanh, False),
        (torch.exp, tf.exp, False),
        (torch.log, tf.math.log, True),
        (torch.sqrt, tf.sqrt, True),
        (F.softplus, tf.nn.softplus, False),
        (F.elu, tf.nn.elu, False),
        (torch.square, tf.square, False),
        (torch.sinh, tf.sinh, False),
        (torch.cosh, tf.cosh, False),
    ],
    ids=["relu", "sigmoid", "tanh", "exp", "log", "sqrt", "softplus", "elu", "square", "sinh", "cosh"],
)
def test_rescale_agrees_between_backends(torch_fn: Any, tf_fn: Any, positive: bool, dtype: Any) -> None:
    x, r = pair((4, 6), positive)
    _, (m_torch,) = torch_rule(torch_fn, [x], [r], dtype)
    _, (m_tf,) = tf_rule(tf_fn, [x], [r], dtype)
    close(m_torch, m_tf, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize(
    "torch_fn, tf_fn",
    [
        (torch.mul, tf.multiply),
        (torch.div, tf.math.truediv),
        (torch.maximum, tf.maximum),
        (torch.pow, tf.pow),
        (torch.atan2, tf.atan2),
        (torch.xlogy, tf.math.xlogy),
    ],
    ids=["mul", "div", "maximum", "pow", "atan2", "xlogy"],
)
def test_binary_rules_agree_between_backends(torch_fn: Any, tf_fn: Any, dtype: Any) -> None:
    a, b = pair((3, 4), positive=True), pair((3, 4), positive=True)
    _, m_torch = torch_rule(torch_fn, [a[0], b[0]], [a[1], b[1]], dtype)
    _, m_tf = tf_rule(tf_fn, [a[0], b[0]], [a[1], b[1]], dtype)
    for u, v in zip(m_torch, m_tf, strict=True):
        close(u, v, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_select_splits_a_flip_in_proportion_on_both_backends(dtype: Any) -> None:
    """where(x > 0, x, 0.2 x) (a leaky ReLU written with where) gets the rescale rule of that function."""
    x, r = pair((3, 5))

    def leaky(t: Any) -> Any:
        return torch.where(t > 0, t, 0.2 * t)

    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    xt, rt = torch.tensor(x, dtype=tdtype, requires_grad=True), torch.tensor(r, dtype=tdtype)
    from deepshap.frameworks.pytorch import deep_rules as R

    out, step = R.select(xt.detach() > 0, rt > 0, R.Pair(xt, rt), R.Pair(0.2 * xt, 0.2 * rt))
    (m_torch,) = torch.autograd.grad(out.x.sum(), xt)
    _, (m_tf,) = tf_rule(lambda t: tf.where(t > 0, t, 0.2 * t), [x], [r], dtype)
    exact = secant(lambda a: leaky(torch.tensor(a)).numpy(), x, r)
    assert not step
    close(m_torch.numpy(), exact, dtype)
    close(m_tf, exact, dtype)


@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
def test_float32_softmax_rule_of_shifted_logits_matches_float64(log: bool) -> None:
    """Logits that all move by 25 leave log-probabilities that move by 0.1: in float32 their difference
    loses 25/0.1 ulps to cancellation, which the rule avoids by working in float64."""
    background, samples, _ = shifted_logits()
    x, r = samples, background[:3]
    torch_fn, tf_fn = (F.log_softmax, tf.nn.log_softmax) if log else (F.softmax, tf.nn.softmax)
    expected = softmax_rule(x.astype(np.float64), r.astype(np.float64), log)
    _, (m_torch,) = torch_rule(torch_fn, [x], [r], np.float32, -1)
    _, (m_tf,) = tf_rule(tf_fn, [x], [r], np.float32)
    for m in (m_torch, m_tf):
        np.testing.assert_allclose(m, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())


def _additivity(values: list[np.ndarray], outputs: np.ndarray, expected_value: np.ndarray) -> tuple:
    """(largest |sum phi - gap| / |gap|, largest |sum phi - gap| / (float32 eps * sum |phi|))."""
    total = np.stack([v.sum(1) for v in values], 1)
    magnitude = np.stack([np.abs(v).sum(1) for v in values], 1)
    error = np.abs(total - (outputs - expected_value))
    return (error / np.abs(outputs - expected_value)).max(), (
        error / (np.finfo(np.float32).eps * magnitude)
    ).max()


def test_keras_and_torch_softmax_outputs_of_shifted_logits_add_up_in_float32() -> None:
    """A float32 model ending in softmax whose logits move by 25: the attributions nearly cancel (their
    absolute sum is about 2500 times their sum), so they add up to the float32 rounding of that absolute
    sum, and DeepExplainer's additivity check (with its default tolerance) accepts them."""
    keras = pytest.importorskip("keras")

    import deepshap

    background, samples, weight = shifted_logits()
    model = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(6, use_bias=False), keras.layers.Softmax()]
    )
    model.layers[0].set_weights([weight])
    explainer = deepshap.DeepExplainer(model, background)
    values = explainer.shap_values(samples)  # checks additivity
    to_gap, to_rounding = _additivity(
        values, np.asarray(model(samples), np.float64), explainer.expected_value
    )
    assert to_rounding < 2 and to_gap < 2e-4

    torch_model = torch.nn.Sequential(torch.nn.Linear(6, 6, bias=False), torch.nn.Softmax(-1))
    torch_model[0].weight.data = torch.tensor(weight.T)
    explainer = deepshap.DeepExplainer(torch_model, torch.tensor(background))
    values = explainer.shap_values(torch.tensor(samples))
    outputs = torch_model(torch.tensor(samples)).detach().double().numpy()
    to_gap, to_rounding = _additivity(values, outputs, explainer.expected_value)
    assert to_rounding < 2 and to_gap < 2e-4
