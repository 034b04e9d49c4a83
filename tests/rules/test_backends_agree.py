"""The DeepLIFT/Shapley rules called directly, against their definitions, on both backends.

Each test takes one (sample, reference) pair of small arrays, runs the rule of one registry entry on it
and reads the multipliers from one backward pass of the sum of the outputs: in PyTorch by calling the
entry's handler, in TensorFlow by tracing the op with the rule session and taking ``tf.gradients``. The
multipliers are compared with the rule's definition computed in float64 from the same numbers: the
secant ``(f(x) - f(r)) / (x - r)`` for rescale, the two-player Shapley values by enumeration for binary
ops, the max rule's routing for max and pooling, the chained exp/sum/log rule for the softmax family.
Parametrised over the registries, so a new entry without a definition here fails.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
tf = pytest.importorskip("tensorflow")
F = torch.nn.functional

from deepshap.frameworks.keras.registry import OP_RULES  # noqa: E402
from deepshap.frameworks.pytorch import handlers as H  # noqa: E402
from deepshap.frameworks.pytorch.pairing import Refs  # noqa: E402
from deepshap.frameworks.pytorch.registry import NAMES, RULES, resolve  # noqa: E402
from deepshap.rules import Rule  # noqa: E402

DTYPES = [np.float32, np.float64]
TOL = {np.float32: 2e-4, np.float64: 1e-9}
RNG = np.random.default_rng(0)


def _pair(shape: tuple[int, ...], positive: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A sample and a reference whose entries differ by at least 0.1 (no tiny differences)."""
    x = RNG.uniform(0.3, 2.0, shape) if positive else RNG.uniform(-2.0, 2.0, shape)
    step = RNG.uniform(0.1, 1.0, shape) * RNG.choice([-1.0, 1.0], shape)
    r = np.abs(x + step) if positive else x + step
    return x, np.where(np.abs(r - x) < 0.1, x + 0.5, r)


# --- the two backends, called directly ---------------------------------------------------------------


def torch_rule(func: Any, xs: list[np.ndarray], rs: list[np.ndarray], dtype: Any, *extra: Any, **kwargs: Any):
    """(outputs, multipliers per input) of the registry entry of ``func`` on one pair, in PyTorch."""
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


def _close(actual: np.ndarray, expected: np.ndarray, dtype: Any) -> None:
    np.testing.assert_allclose(actual, expected, rtol=TOL[dtype], atol=TOL[dtype])


# --- rescale: the secant -----------------------------------------------------------------------------

_POSITIVE = {"log", "log2", "log10", "log1p", "sqrt", "rsqrt", "reciprocal", "Log", "Log1p", "Sqrt", "Rsqrt"}
_POSITIVE |= {"Reciprocal", "Inv"}
#: Functions defined on (0, 1) or (-1, 1) only, checked on (0.05, 0.95).
_UNIT = {"asin", "arcsin", "acos", "arccos", "logit", "Asin", "Acos"}
#: Extra arguments of the PyTorch element-wise functions that need them.
_TORCH_EXTRA: dict[str, tuple] = {
    "clamp": (-0.5, 0.5),
    "clip": (-0.5, 0.5),
    "clamp_min": (0.1,),
    "clamp_max": (0.1,),
    "threshold": (0.1, -1.0),
}
_TORCH_RESCALE = sorted(
    name
    for name in NAMES
    if RULES[resolve(name)].kind is Rule.RESCALE and not name.endswith("_") and "rrelu" not in name
)


def _unit_pair(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """A sample and a reference in (0.05, 0.95) whose entries differ by 0.45."""
    x = RNG.uniform(0.05, 0.95, shape)
    return x, (x - 0.05 + 0.45) % 0.9 + 0.05


def _secant(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, r: np.ndarray) -> np.ndarray:
    return (f(x) - f(r)) / (x - r)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("name", _TORCH_RESCALE)
def test_torch_rescale_is_the_secant(name: str, dtype: Any) -> None:
    short = name.rsplit(".", 1)[-1]
    func, extra = resolve(name), _TORCH_EXTRA.get(short, ())
    x, r = _unit_pair((3, 5)) if short in _UNIT else _pair((3, 5), positive=short in _POSITIVE)
    _, (m,) = torch_rule(func, [x], [r], dtype, *extra)
    exact = _secant(lambda a: func(torch.tensor(a, dtype=torch.float64), *extra).numpy(), x, r)
    _close(m, exact, dtype)


_TF_RESCALE: dict[str, Callable[[Any], Any]] = {
    "Relu": tf.nn.relu,
    "Relu6": tf.nn.relu6,
    "LeakyRelu": tf.nn.leaky_relu,
    "Elu": tf.nn.elu,
    "Selu": tf.nn.selu,
    "Softplus": tf.nn.softplus,
    "Softsign": tf.nn.softsign,
    "Sigmoid": tf.sigmoid,
    "Tanh": tf.tanh,
    "Exp": tf.exp,
    "Expm1": tf.math.expm1,
    "Log": tf.math.log,
    "Log1p": tf.math.log1p,
    "Sqrt": tf.sqrt,
    "Rsqrt": tf.math.rsqrt,
    "Reciprocal": tf.math.reciprocal,
    "Inv": lambda t: tf.raw_ops.Inv(x=t),
    "Abs": tf.abs,
    "Erf": tf.math.erf,
    "Erfc": tf.math.erfc,
    "Sin": tf.sin,
    "Cos": tf.cos,
    "Atan": tf.atan,
    "Sinh": tf.sinh,
    "Cosh": tf.cosh,
    "Asin": tf.asin,
    "Acos": tf.acos,
    "Asinh": tf.asinh,
    "ClipByValue": lambda t: tf.clip_by_value(t, -0.5, 0.5),
    "Square": tf.square,
}


def test_every_tensorflow_rescale_op_has_a_definition_here() -> None:
    assert {k for k, v in OP_RULES.items() if v.kind is Rule.RESCALE} == set(_TF_RESCALE)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("op_type", sorted(_TF_RESCALE))
def test_tensorflow_rescale_is_the_secant(op_type: str, dtype: Any) -> None:
    fn = _TF_RESCALE[op_type]
    x, r = _unit_pair((3, 5)) if op_type in _UNIT else _pair((3, 5), positive=op_type in _POSITIVE)
    _, (m,) = tf_rule(fn, [x], [r], dtype)
    _close(m, _secant(lambda a: fn(tf.constant(a, tf.float64)).numpy(), x, r), dtype)


# --- binary element-wise: two-player Shapley values by enumeration ------------------------------------


def _shapley(f: Callable[[np.ndarray, np.ndarray], np.ndarray], a: tuple, b: tuple) -> tuple:
    """Each operand's Shapley value (its average marginal contribution over the two orders)."""
    (ax, ar), (bx, br) = a, b
    phi_a = ((f(ax, br) - f(ar, br)) + (f(ax, bx) - f(ar, bx))) / 2
    phi_b = ((f(ar, bx) - f(ar, br)) + (f(ax, bx) - f(ax, br))) / 2
    return phi_a, phi_b


_TORCH_BINARY = sorted(
    name
    for name in NAMES
    if not name.endswith("_")
    and not name.startswith("torch.Tensor.__i")
    and (
        RULES[resolve(name)].kind is Rule.SHAPLEY_PAIR
        or RULES[resolve(name)].apply is H.divide
        or getattr(RULES[resolve(name)].apply, "func", None) in (H.divide, H.binary_closed_form)
    )
)


def _torch64(func: Any) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    return lambda u, v: func(
        torch.tensor(u, dtype=torch.float64), torch.tensor(v, dtype=torch.float64)
    ).numpy()


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("name", _TORCH_BINARY)
def test_torch_binary_rules_are_two_player_shapley_values(name: str, dtype: Any) -> None:
    func = resolve(name)
    a, b = _pair((2, 4), positive=True), _pair((2, 4), positive=True)
    _, (m_a, m_b) = torch_rule(func, [a[0], b[0]], [a[1], b[1]], dtype)
    phi_a, phi_b = _shapley(_torch64(func), a, b)
    _close(m_a * (a[0] - a[1]), phi_a, dtype)
    _close(m_b * (b[0] - b[1]), phi_b, dtype)


_TF_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "Maximum": tf.maximum,
    "Minimum": tf.minimum,
    "Pow": tf.pow,
    "DivNoNan": tf.math.divide_no_nan,
    "Atan2": tf.atan2,
    "Xlogy": tf.math.xlogy,
    "RealDiv": tf.math.truediv,
    "Div": lambda a, b: tf.raw_ops.Div(x=a, y=b),
    "SquaredDifference": tf.math.squared_difference,
    "Mul": tf.multiply,
}


def test_every_tensorflow_binary_op_has_a_definition_here() -> None:
    pairs = {k for k, v in OP_RULES.items() if v.kind is Rule.SHAPLEY_PAIR}
    assert pairs | {"Mul"} == set(_TF_BINARY)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("op_type", sorted(_TF_BINARY))
def test_tensorflow_binary_rules_are_two_player_shapley_values(op_type: str, dtype: Any) -> None:
    fn = _TF_BINARY[op_type]
    a, b = _pair((2, 4), positive=True), _pair((2, 4), positive=True)
    _, (m_a, m_b) = tf_rule(fn, [a[0], b[0]], [a[1], b[1]], dtype)
    phi_a, phi_b = _shapley(lambda u, v: fn(tf.constant(u), tf.constant(v)).numpy(), a, b)
    _close(m_a * (a[0] - a[1]), phi_a, dtype)
    _close(m_b * (b[0] - b[1]), phi_b, dtype)


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
    a, b = _pair((2, 3, 4)), _pair((2, 4, 2))
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
    phi_a, phi_b = _shapley(lambda u, v: np.matmul(u, v).sum(), a, b)
    for m_t, m_k, (x, r), phi in zip(m_torch, m_tf, (a, b), (phi_a, phi_b), strict=True):
        _close((m_t * (x - r)).sum(), phi, dtype)
        _close(m_t, m_k, dtype)


# --- max and pooling: the max rule's definition -------------------------------------------------------


def _max_rule(x: np.ndarray, r: np.ndarray) -> np.ndarray:
    """The max rule over the last axis: the change goes to the sample's argmax where the sample's maximum
    is the larger, else to the reference's, divided by the input's change there."""
    m = np.zeros_like(x)
    for row in np.ndindex(x.shape[:-1]):
        y, y_ref = x[row].max(), r[row].max()
        at = int(np.argmax(x[row])) if y >= y_ref else int(np.argmax(r[row]))
        m[row + (at,)] = (y - y_ref) / (x[row][at] - r[row][at])
    return m


def _windows(t: np.ndarray) -> np.ndarray:
    """(1, C, 4, 4) -> (1, C, 2, 2, 4): the 2x2 windows of a stride-2 pooling, flattened."""
    return t.reshape(1, t.shape[1], 2, 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(1, t.shape[1], 2, 2, 4)


def _unwindows(w: np.ndarray) -> np.ndarray:
    return w.reshape(1, w.shape[1], 2, 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(1, w.shape[1], 4, 4)


_TORCH_MAX = sorted(name for name in NAMES if RULES[resolve(name)].kind is Rule.MAX)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("name", _TORCH_MAX)
def test_torch_max_rules_follow_the_definition(name: str, dtype: Any) -> None:
    short = name.rsplit(".", 1)[-1]
    func = resolve(name)
    if "pool" not in short:
        x, r = _pair((3, 5))
        sign = 1.0 if short in ("max", "amax") else -1.0
        _, (m,) = torch_rule(func, [x], [r], dtype, 1)
        _close(m, _max_rule(sign * x, sign * r), dtype)
        return
    spatial = int(short.replace("_with_indices", "")[-2])
    shape = {1: (1, 2, 16), 2: (1, 2, 4, 4), 3: (1, 2, 4, 4, 4)}[spatial]
    x, r = _pair(shape)
    size = (2,) * spatial if "adaptive" in short else 2
    _, (m,) = torch_rule(func, [x], [r], dtype, size)
    if spatial == 2:
        _close(m, _unwindows(_max_rule(_windows(x), _windows(r))), dtype)
    else:  # every window's change lands on one position, with a multiplier in [0, 1]
        out_x = func(torch.tensor(x), size)
        out_r = func(torch.tensor(r), size)
        out_x, out_r = (o[0] if isinstance(o, tuple) else o for o in (out_x, out_r))
        _close((m * (x - r)).sum(), (out_x - out_r).sum().item(), dtype)
        assert np.count_nonzero(m) <= out_x.numel() and m.min() >= 0 and m.max() <= 1 + 1e-6


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_max_pooling_and_max_reductions_agree_between_backends(dtype: Any) -> None:
    x, r = _pair((1, 2, 4, 4))
    _, (m_torch,) = torch_rule(F.max_pool2d, [x], [r], dtype, 2)
    nhwc = (x.transpose(0, 2, 3, 1), r.transpose(0, 2, 3, 1))
    _, (m_tf,) = tf_rule(lambda t: tf.nn.max_pool2d(t, 2, 2, "VALID"), [nhwc[0]], [nhwc[1]], dtype)
    _close(m_torch, m_tf.transpose(0, 3, 1, 2), dtype)
    _close(m_torch, _unwindows(_max_rule(_windows(x), _windows(r))), dtype)
    x, r = _pair((3, 5))
    for torch_fn, tf_fn, sign in ((torch.amax, tf.reduce_max, 1.0), (torch.amin, tf.reduce_min, -1.0)):
        _, (m_torch,) = torch_rule(torch_fn, [x], [r], dtype, 1)
        _, (m_tf,) = tf_rule(lambda t, fn=tf_fn: fn(t, axis=1), [x], [r], dtype)
        _close(m_torch, m_tf, dtype)
        _close(m_torch, _max_rule(sign * x, sign * r), dtype)


# --- softmax family: exp, sum and log chained ---------------------------------------------------------


def _logsumexp_rule(x: np.ndarray, r: np.ndarray) -> np.ndarray:
    """The chained rule of log(sum(exp(x))) over the last axis: log's secant times exp's secant."""
    sx, sr = np.exp(x).sum(-1, keepdims=True), np.exp(r).sum(-1, keepdims=True)
    return (np.log(sx) - np.log(sr)) / (sx - sr) * (np.exp(x) - np.exp(r)) / (x - r)


def _softmax_rule(x: np.ndarray, r: np.ndarray, log: bool) -> np.ndarray:
    """Multipliers summed over outputs of (log-)softmax = exp(x - logsumexp(x)), per input."""
    m_lse = _logsumexp_rule(x, r)
    lx = x - np.log(np.exp(x).sum(-1, keepdims=True))
    lr = r - np.log(np.exp(r).sum(-1, keepdims=True))
    m_exp = np.ones_like(x) if log else (np.exp(lx) - np.exp(lr)) / (lx - lr)
    return m_exp - m_lse * m_exp.sum(-1, keepdims=True)


_TORCH_SOFTMAX = sorted(name for name in NAMES if RULES[resolve(name)].kind is Rule.SOFTMAX)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("name", _TORCH_SOFTMAX)
def test_torch_softmax_family_follows_the_chained_rule(name: str, dtype: Any) -> None:
    short = name.rsplit(".", 1)[-1]
    x, r = _pair((3, 5))
    _, (m,) = torch_rule(resolve(name), [x], [r], dtype, -1)
    if short == "logsumexp":
        expected = _logsumexp_rule(x, r)
    elif short == "softmin":
        expected = -_softmax_rule(-x, -r, log=False)
    else:
        expected = _softmax_rule(x, r, log=short == "log_softmax")
    _close(m, expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
def test_softmax_agrees_between_backends_and_with_its_definition(log: bool, dtype: Any) -> None:
    x, r = _pair((3, 5))
    torch_fn, tf_fn = (F.log_softmax, tf.nn.log_softmax) if log else (F.softmax, tf.nn.softmax)
    _, (m_torch,) = torch_rule(torch_fn, [x], [r], dtype, -1)
    _, (m_tf,) = tf_rule(tf_fn, [x], [r], dtype)
    _close(m_torch, _softmax_rule(x, r, log), dtype)
    _close(m_tf, _softmax_rule(x, r, log), dtype)


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
    x, r = _pair((4, 6), positive)
    _, (m_torch,) = torch_rule(torch_fn, [x], [r], dtype)
    _, (m_tf,) = tf_rule(tf_fn, [x], [r], dtype)
    _close(m_torch, m_tf, dtype)


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
    a, b = _pair((3, 4), positive=True), _pair((3, 4), positive=True)
    _, m_torch = torch_rule(torch_fn, [a[0], b[0]], [a[1], b[1]], dtype)
    _, m_tf = tf_rule(tf_fn, [a[0], b[0]], [a[1], b[1]], dtype)
    for u, v in zip(m_torch, m_tf, strict=True):
        _close(u, v, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_select_splits_a_flip_in_proportion_on_both_backends(dtype: Any) -> None:
    """where(x > 0, x, 0.2 x) (a leaky ReLU written with where) gets the rescale rule of that function."""
    x, r = _pair((3, 5))

    def leaky(t: Any) -> Any:
        return torch.where(t > 0, t, 0.2 * t)

    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    xt, rt = torch.tensor(x, dtype=tdtype, requires_grad=True), torch.tensor(r, dtype=tdtype)
    from deepshap.frameworks.pytorch import deep_rules as R

    out, step = R.select(xt.detach() > 0, rt > 0, R.Pair(xt, rt), R.Pair(0.2 * xt, 0.2 * rt))
    (m_torch,) = torch.autograd.grad(out.x.sum(), xt)
    _, (m_tf,) = tf_rule(lambda t: tf.where(t > 0, t, 0.2 * t), [x], [r], dtype)
    exact = _secant(lambda a: leaky(torch.tensor(a)).numpy(), x, r)
    assert not step
    _close(m_torch.numpy(), exact, dtype)
    _close(m_tf, exact, dtype)


# --- a softmax at the output in float32 --------------------------------------------------------------


def _shifted_logits(k: int = 6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Background rows, samples whose logits all move by about 25 while their differences move by 0.2
    (the probabilities change a little, the attributions nearly cancel), and a near-identity weight."""
    rng = np.random.default_rng(1)
    background = rng.normal(size=(4, k)).astype(np.float32)
    samples = (background[:3] + 25 + rng.uniform(-0.2, 0.2, size=(3, k))).astype(np.float32)
    return background, samples, (np.eye(k) + 0.01 * rng.normal(size=(k, k))).astype(np.float32)


@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
def test_float32_softmax_rule_of_shifted_logits_matches_float64(log: bool) -> None:
    """Logits that all move by 25 leave log-probabilities that move by 0.1: in float32 their difference
    loses 25/0.1 ulps to cancellation, which the rule avoids by working in float64."""
    background, samples, _ = _shifted_logits()
    x, r = samples, background[:3]
    torch_fn, tf_fn = (F.log_softmax, tf.nn.log_softmax) if log else (F.softmax, tf.nn.softmax)
    expected = _softmax_rule(x.astype(np.float64), r.astype(np.float64), log)
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
    import keras

    import deepshap

    background, samples, weight = _shifted_logits()
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
