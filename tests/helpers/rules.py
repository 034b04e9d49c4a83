"""What the rule tests share: (sample, reference) pairs, the rules' definitions computed in float64 with
numpy, and each backend's rule run on one pair.

The definitions: the secant ``(f(x) - f(r)) / (x - r)`` for rescale, the two-player Shapley values by
enumeration for binary ops, the max rule's routing for max and pooling, the chained exp/sum/log rule for
the softmax family. torch and TensorFlow are imported inside :func:`torch_rule` and :func:`tf_rule`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

DTYPES = [np.float32, np.float64]
#: Tolerance of the comparisons with the definitions, per dtype.
TOL = {np.float32: 2e-4, np.float64: 1e-9}
RNG = np.random.default_rng(0)


def pair(shape: tuple[int, ...], positive: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A sample and a reference whose entries differ by at least 0.1 (no tiny differences)."""
    x = RNG.uniform(0.3, 2.0, shape) if positive else RNG.uniform(-2.0, 2.0, shape)
    step = RNG.uniform(0.1, 1.0, shape) * RNG.choice([-1.0, 1.0], shape)
    r = np.abs(x + step) if positive else x + step
    return x, np.where(np.abs(r - x) < 0.1, x + 0.5, r)


def torch_rule(func: Any, xs: list[np.ndarray], rs: list[np.ndarray], dtype: Any, *extra: Any, **kwargs: Any):
    """(outputs, multipliers per input) of the registry entry of ``func`` on one pair, in PyTorch."""
    import torch

    from deepshap.frameworks.pytorch.pairing import Refs
    from deepshap.frameworks.pytorch.registry import RULES

    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    x = [torch.tensor(a, dtype=tdtype, requires_grad=True) for a in xs]
    r = [torch.tensor(a, dtype=tdtype) for a in rs]
    out = RULES[func].apply(func, str(func), [*x, *extra], kwargs, Refs(x, r, 1, 1))
    out = out[0] if isinstance(out, tuple) else out
    grads = torch.autograd.grad(out.sum(), x, allow_unused=True)
    return out.detach().numpy(), [
        np.zeros_like(a) if g is None else g.numpy() for a, g in zip(xs, grads, strict=True)
    ]


def tf_rule(fn: Callable[..., Any], xs: list[np.ndarray], rs: list[np.ndarray], dtype: Any):
    """(outputs, multipliers per input) of ``fn``'s ops with their rules on one pair, in TensorFlow."""
    import tensorflow as tf

    from deepshap.frameworks.keras.deep_rules import RuleSession

    @tf.function(autograph=False)
    def run(x: list, r: list) -> tuple:
        session = RuleSession(tf.compat.v1.get_default_graph())
        with session.active():
            out = session.trace_pair(lambda ts: fn(*ts), list(x), list(r))
            grads = tf.gradients(out, list(x))
        return out, [tf.zeros_like(t) if g is None else g for t, g in zip(x, grads, strict=True)]

    out, grads = run([tf.constant(a, dtype) for a in xs], [tf.constant(a, dtype) for a in rs])
    return out.numpy(), [g.numpy() for g in grads]


def close(actual: np.ndarray, expected: np.ndarray, dtype: Any) -> None:
    """``actual`` equals ``expected`` within the tolerance of ``dtype``."""
    np.testing.assert_allclose(actual, expected, rtol=TOL[dtype], atol=TOL[dtype])


#: Functions defined on positive numbers only.
POSITIVE = {"log", "log2", "log10", "log1p", "sqrt", "rsqrt", "reciprocal", "Log", "Log1p", "Sqrt", "Rsqrt"}
POSITIVE |= {"Reciprocal", "Inv"}
#: Functions defined on (0, 1) or (-1, 1) only, checked on (0.05, 0.95).
UNIT = {"asin", "arcsin", "acos", "arccos", "logit", "Asin", "Acos"}


def unit_pair(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """A sample and a reference in (0.05, 0.95) whose entries differ by 0.45."""
    x = RNG.uniform(0.05, 0.95, shape)
    return x, (x - 0.05 + 0.45) % 0.9 + 0.05


def secant(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, r: np.ndarray) -> np.ndarray:
    """The rescale rule's multiplier of ``f`` from ``r`` to ``x``."""
    return (f(x) - f(r)) / (x - r)


def shapley(f: Callable[[np.ndarray, np.ndarray], np.ndarray], a: tuple, b: tuple) -> tuple:
    """Each operand's Shapley value (its average marginal contribution over the two orders)."""
    (ax, ar), (bx, br) = a, b
    phi_a = ((f(ax, br) - f(ar, br)) + (f(ax, bx) - f(ar, bx))) / 2
    phi_b = ((f(ar, bx) - f(ar, br)) + (f(ax, bx) - f(ax, br))) / 2
    return phi_a, phi_b


def max_rule(x: np.ndarray, r: np.ndarray) -> np.ndarray:
    """The max rule over the last axis: the change goes to the sample's argmax where the sample's maximum
    is the larger, else to the reference's, divided by the input's change there."""
    m = np.zeros_like(x)
    for row in np.ndindex(x.shape[:-1]):
        y, y_ref = x[row].max(), r[row].max()
        at = int(np.argmax(x[row])) if y >= y_ref else int(np.argmax(r[row]))
        m[row + (at,)] = (y - y_ref) / (x[row][at] - r[row][at])
    return m


def windows(t: np.ndarray) -> np.ndarray:
    """(1, C, 4, 4) -> (1, C, 2, 2, 4): the 2x2 windows of a stride-2 pooling, flattened."""
    return t.reshape(1, t.shape[1], 2, 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(1, t.shape[1], 2, 2, 4)


def unwindows(w: np.ndarray) -> np.ndarray:
    return w.reshape(1, w.shape[1], 2, 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(1, w.shape[1], 4, 4)


def logsumexp_rule(x: np.ndarray, r: np.ndarray) -> np.ndarray:
    """The chained rule of log(sum(exp(x))) over the last axis: log's secant times exp's secant."""
    sx, sr = np.exp(x).sum(-1, keepdims=True), np.exp(r).sum(-1, keepdims=True)
    return (np.log(sx) - np.log(sr)) / (sx - sr) * (np.exp(x) - np.exp(r)) / (x - r)


def softmax_rule(x: np.ndarray, r: np.ndarray, log: bool) -> np.ndarray:
    """Multipliers summed over outputs of (log-)softmax = exp(x - logsumexp(x)), per input."""
    m_lse = logsumexp_rule(x, r)
    lx = x - np.log(np.exp(x).sum(-1, keepdims=True))
    lr = r - np.log(np.exp(r).sum(-1, keepdims=True))
    m_exp = np.ones_like(x) if log else (np.exp(lx) - np.exp(lr)) / (lx - lr)
    return m_exp - m_lse * m_exp.sum(-1, keepdims=True)


def shifted_logits(k: int = 6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Background rows, samples whose logits all move by about 25 while their differences move by 0.2
    (the probabilities change a little, the attributions nearly cancel), and a near-identity weight."""
    rng = np.random.default_rng(1)
    background = rng.normal(size=(4, k)).astype(np.float32)
    samples = (background[:3] + 25 + rng.uniform(-0.2, 0.2, size=(3, k))).astype(np.float32)
    return background, samples, (np.eye(k) + 0.01 * rng.normal(size=(k, k))).astype(np.float32)
