"""The rule registries: every key is a real function or op type, every handler is reachable, functions
arrive under whatever name they are called by, and users can register rules of their own."""

from __future__ import annotations

import functools
import inspect
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional
nn = torch.nn

import deepshap  # noqa: E402
from deepshap.errors import UnsupportedOperationError  # noqa: E402


def _handlers_of(rules: Any, fields: tuple[str, ...]) -> set[Any]:
    """The functions the registry's entries call (partials unwrapped)."""
    found = set()
    for rule in rules:
        for field in fields:
            fn = getattr(rule, field)
            while isinstance(fn, functools.partial):
                fn = fn.func
            if fn is not None:
                found.add(fn)
    return found


def test_every_torch_key_is_a_function_the_mode_receives_and_every_handler_is_used() -> None:
    from torch.overrides import resolve_name

    from deepshap.frameworks.pytorch import attention, decompositions, handlers
    from deepshap.frameworks.pytorch.registry import NAMES, RULES, resolve

    for name in NAMES:
        func = resolve(name)
        assert callable(func) and func in RULES, name
        assert resolve_name(func) is not None or "Tensor" in name, name  # a real torch function
    used = _handlers_of(RULES.values(), ("apply", "linear_if", "check", "operands"))
    for module in (handlers, attention, decompositions):
        public = {getattr(module, n) for n in module.__all__ if inspect.isfunction(getattr(module, n))}
        factories = {handlers.where_operands}  # used through the functions they return
        assert public - used - factories == set(), module.__name__


def test_every_tensorflow_key_is_an_op_type_and_every_handler_is_used() -> None:
    tf = pytest.importorskip("tensorflow")
    from deepshap.frameworks.keras import handlers
    from deepshap.frameworks.keras.registry import OP_RULES

    for op_type in OP_RULES:
        assert hasattr(tf.raw_ops, op_type), op_type
    used = _handlers_of(OP_RULES.values(), ("gradient",))
    gradients = {
        getattr(handlers, n)
        for n, fn in vars(handlers).items()
        if inspect.isfunction(fn)
        and fn.__module__ == handlers.__name__
        and list(inspect.signature(fn).parameters)[:2] == ["session", "op"]
    }
    assert gradients - used == {handlers.max_reduce}  # which max_pool calls for layouts it cannot scatter


def _additive(model: Any, bg: Any, X: Any) -> list[np.ndarray]:
    """SHAP values of a two-output torch model, checked to add up (and by DeepExplainer's own check)."""
    explainer = deepshap.DeepExplainer(model, bg)
    values = explainer.shap_values(X)
    gap = model(X).detach().double().numpy() - explainer.expected_value
    total = np.stack([np.asarray(v, np.float64).reshape(len(X), -1).sum(1) for v in values], 1)
    np.testing.assert_allclose(total, gap, rtol=1e-4, atol=1e-5 * np.abs(gap).max())
    return values


class _Fn(torch.nn.Module):
    def __init__(self, fn: Any, width: int = 6) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.inner = torch.nn.Linear(width, width)
        self.fn = fn
        self.out = torch.nn.LazyLinear(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.fn(self.inner(x)).reshape(len(x), -1))


def _data(width: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(5, width, generator=g), torch.randn(3, width, generator=g)


@pytest.mark.parametrize(
    "fn",
    [
        lambda h: torch.relu(torch.cat(torch.split(h, 2, dim=1), dim=1)),  # arrives as torch.functional.split
        lambda h: torch.relu(torch.mm(h, torch.ones(6, 4))),  # resolve_name says torch.spmm
        lambda h: torch.relu(torch.atleast_2d(h)) + torch.atleast_1d(h) + torch.atleast_3d(h)[..., 0],
        lambda h: torch.relu(torch.tensordot(h, torch.ones(6, 3), dims=1)),
        lambda h: torch.relu(sum(torch.broadcast_tensors(h, torch.ones(1, 6)))),
        lambda h: torch.relu(F.native_channel_shuffle(h.reshape(len(h), 6, 1), 2)),
        lambda h: torch.tensordot(torch.sigmoid(h), torch.tanh(h), dims=([1], [1])).diagonal().unsqueeze(1),
        lambda h: torch.special.expit(h) + torch.erfc(h) + torch.arctan(h) + h.negative() + torch.absolute(h),
        lambda h: torch.hypot(h, 2 * h) + torch.logaddexp(h, h.flip(1)) + torch.arctan2(h, h.flip(1) + 3),
        lambda h: torch.stack([torch.dot(torch.tanh(r), r) + torch.outer(r, r).sum() for r in h])[:, None],
        lambda h: torch.special.softmax(h, 1) + torch.special.logsumexp(h, 1, keepdim=True),
    ],
    ids=["split", "mm", "atleast", "tensordot", "broadcast_tensors", "native_channel_shuffle", "tensordot2"]
    + ["aliases", "binary", "vector_products", "special_softmax"],
)
def test_torch_functions_known_under_another_name_get_their_rule(fn: Any) -> None:
    bg, X = _data()
    model = _Fn(fn).eval()
    model(bg)  # materialise the lazy layer
    _additive(model, bg, X)


def test_a_registered_torch_function_gets_its_rule_and_an_unregistered_one_is_named() -> None:
    from deepshap.frameworks.pytorch.registry import RULES

    bg, X = _data()
    model = _Fn(torch.special.erfcx).eval()
    model(bg)
    with pytest.raises(UnsupportedOperationError, match="erfcx"):
        deepshap.DeepExplainer(model, bg).shap_values(X)
    with deepshap.rules.registered(torch.special.erfcx, "rescale"):
        _additive(model, bg, X)
    assert torch.special.erfcx not in RULES


def test_a_torch_function_registered_with_a_decomposition_is_explained_through_it() -> None:
    from deepshap.frameworks.pytorch.registry import RULES

    bg, X = _data()
    model = _Fn(lambda h: torch.lerp(h, torch.tanh(h), 0.3)).eval()
    model(bg)
    with pytest.raises(UnsupportedOperationError, match="lerp"):
        deepshap.DeepExplainer(model, bg).shap_values(X)
    with deepshap.rules.registered(torch.lerp, lambda start, end, weight: start + weight * (end - start)):
        _additive(model, bg, X)
    assert torch.lerp not in RULES


def test_a_registered_tensorflow_op_type_gets_its_rule() -> None:
    tf = pytest.importorskip("tensorflow")
    keras = pytest.importorskip("keras")
    from deepshap.frameworks.keras.registry import OP_RULES

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(6, activation="tanh"),
            keras.layers.Lambda(lambda t: tf.math.erfinv(0.9 * t)),
            keras.layers.Dense(2),
        ]
    )
    bg, X = (np.asarray(t, np.float32) for t in _data())
    with pytest.raises(UnsupportedOperationError, match="Erfinv"):
        deepshap.DeepExplainer(model, bg).shap_values(X)
    with deepshap.rules.registered("Erfinv", "rescale", data_inputs=(0,)):
        explainer = deepshap.DeepExplainer(model, bg)
        values = explainer.shap_values(X)  # checks additivity
        gap = np.asarray(model(X), np.float64) - explainer.expected_value
        np.testing.assert_allclose(np.stack([v.sum(1) for v in values], 1), gap, rtol=1e-4, atol=1e-6)
    assert "Erfinv" not in OP_RULES


def test_a_registration_overrides_a_built_in_rule_until_undone() -> None:
    """Registering tanh as linear (its gradient) changes the values; unregister() and the end of a
    registered() block give tanh its own rule back, an earlier registration surviving a nested block."""
    bg, X = _data()
    model = _Fn(torch.tanh).eval()
    model(bg)

    def values() -> np.ndarray:
        return np.asarray(deepshap.DeepExplainer(model, bg).shap_values(X, check_additivity=False))

    own = values()
    with deepshap.rules.registered(torch.tanh, "linear"):
        as_linear = values()
    assert np.abs(as_linear - own).max() > 1e-3
    np.testing.assert_array_equal(values(), own)
    deepshap.rules.register(torch.tanh, "linear")
    try:
        with deepshap.rules.registered(torch.tanh, "rescale"):
            np.testing.assert_array_equal(values(), own)
        np.testing.assert_array_equal(values(), as_linear)
    finally:
        deepshap.rules.unregister(torch.tanh)
    np.testing.assert_array_equal(values(), own)


class _Erfcx(nn.Module):
    """A module whose forward has no rule of its own."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.special.erfcx(x)


def test_a_registered_module_class_gets_one_rule_for_its_whole_forward() -> None:
    """Registered as rescale, the module gets the secant of its whole forward (the values of its one
    function registered as rescale); before and after the block it is refused, naming that function."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), _Erfcx(), nn.Linear(8, 2)).eval()
    bg, X = _data()
    with deepshap.rules.registered(torch.special.erfcx, "rescale"):
        by_function = np.asarray(deepshap.DeepExplainer(model, bg).shap_values(X))
    with deepshap.rules.registered(_Erfcx, "rescale"):
        by_module = np.asarray(deepshap.DeepExplainer(model, bg).shap_values(X))
    np.testing.assert_allclose(by_module, by_function, rtol=1e-6, atol=1e-7)
    assert "forward" not in vars(model[1])
    with pytest.raises(UnsupportedOperationError, match="erfcx"):
        deepshap.DeepExplainer(model, bg).shap_values(X)
    with pytest.raises(TypeError, match="class"):
        deepshap.rules.register(_Erfcx(), "rescale")
    with pytest.raises(TypeError, match="rule kind"):
        deepshap.rules.register(_Erfcx, lambda x: x)


def test_register_refuses_what_it_cannot_do() -> None:
    with pytest.raises(ValueError, match="rescale"):
        deepshap.rules.register(torch.special.erfcx, "softmax")
    with pytest.raises(TypeError, match="rule kind"):
        deepshap.rules.register("Erfinv", lambda t: t)
