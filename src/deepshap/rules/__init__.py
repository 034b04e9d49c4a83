"""DeepLIFT/Shapley rules: their kinds, their maths (:mod:`deepshap.rules.maths`, written once for every
framework) and :func:`register`, which gives a user's own operation a rule.

A rule says how the multiplier of an operation's output is carried back to its inputs for one
(sample, reference) pair. Every rule satisfies summation-to-delta: the multipliers times the input
differences add up to the output difference, so DeepSHAP attributions add up to ``f(x) - E f(background)``.
Which framework function gets which rule is one table per backend, keyed by what the backend sees: the
function object in PyTorch (``deepshap.frameworks.pytorch.registry``), the op type in TensorFlow
(``deepshap.frameworks.keras.registry``).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from enum import StrEnum

from deepshap._typing import NativeFunction

__all__ = ["Rule", "register", "registered", "unregister"]


class Rule(StrEnum):
    """The rule kinds the backends implement."""

    #: Linear in the input (convolutions, linear layers, pooling by averages, eval batch norm, reshapes,
    #: concatenation, padding, indexing, sums): the ordinary gradient is the exact multiplier.
    LINEAR = "linear"
    #: Element-wise unary nonlinearity y = f(x): the multiplier (y - y_ref) / (x - x_ref), falling back to
    #: the derivative at the midpoint where the difference vanishes.
    RESCALE = "rescale"
    #: Element-wise binary operation where both operands may depend on the input (maximum, minimum, pow):
    #: the exact two-player Shapley split of the output difference between the operands.
    SHAPLEY_PAIR = "shapley_pair"
    #: Products (mul, div) and bilinear maps (matmul, bmm, einsum, linear/conv with an input-dependent
    #: weight): the exact two-player Shapley split, which for a bilinear map is its gradient at the
    #: midpoint between sample and reference (a closed form for mul and div).
    BILINEAR = "bilinear"
    #: Max pooling and max/min reductions: the output difference goes to the sample's argmax where the
    #: sample's maximum is the larger, else to the reference's, divided by the input difference there;
    #: additive for overlapping windows too.
    MAX = "max"
    #: softmax, log_softmax, logsumexp: ``exp(x - logsumexp(x))``, the logsumexp's multipliers being those
    #: of exp, sum and log chained with one shift shared by sample and reference (computed in float64).
    SOFTMAX = "softmax"
    #: layer, group and RMS normalisation: centring (linear), square (rescale), mean (linear), rsqrt of
    #: the variance plus eps (rescale) and the product (bilinear).
    NORM = "norm"
    #: scaled dot-product and multi-head attention: projections (linear), q k^T (bilinear), softmax
    #: (as above), weights times values (bilinear).
    ATTENTION = "attention"
    #: ``where(c, t, e)`` (and ``masked_fill``): linear in ``t`` and ``e`` where the condition is the same for
    #: the sample and the reference; where a condition computed from the input differs, the output's
    #: change goes through both branches in proportion to their own changes (``dt * m_t + de * m_e = dy``),
    #: which for a one-variable activation written with ``where`` is the rescale rule of the activation.
    SELECT = "select"
    #: Other composites (glu, var/std, vector norms, normalize, instance norm): rewritten into the
    #: primitives above while the interception runs, so each primitive gets its own rule.
    DECOMPOSE = "decompose"


#: Registrations made before the backend of their framework was loaded: PyTorch's (op, rule) and
#: TensorFlow's (op type, rule kind, data inputs), in the order they were made.
_PENDING_TORCH: list[tuple[NativeFunction, str | NativeFunction]] = []
_PENDING_TENSORFLOW: list[tuple[str, str, tuple[int, ...] | None]] = []
_BACKENDS = {
    "torch": "deepshap.frameworks.pytorch.registry",
    "tensorflow": "deepshap.frameworks.keras.registry",
}


def register(
    op: str | NativeFunction, rule: str | NativeFunction, *, data_inputs: tuple[int, ...] | None = None
) -> None:
    """Give an operation of your own (or one deepshap refuses) a DeepLIFT/Shapley rule.

    ``op`` is what the backend sees: for PyTorch the function itself (``torch.special.erfcx``, a
    ``torch.library`` custom op, a function of yours that you call with ``torch.overrides`` support), for
    TensorFlow the op type as a string (``"Erfinv"``, the type of a custom op). ``rule`` is one of:

    - ``"linear"``: the op is linear in its input-dependent arguments; its own gradient is exact.
    - ``"rescale"``: an element-wise function of one input-dependent argument.
    - ``"shapley_pair"``: an element-wise function of two arguments that may both depend on the input.
    - ``"bilinear"``: bilinear in two arguments (a product, a matrix product).
    - PyTorch only: ``op`` may be an ``nn.Module`` class with one of the kinds above; the whole forward
      of its instances then gets that rule (``register(MyActivation, "rescale")``).
    - PyTorch only: a function with ``op``'s signature written in operations that have rules (a
      decomposition); each of its operations then gets its own rule.
    - PyTorch only: ``op`` may be a custom ``torch.autograd.Function`` class, with a kind or a
      decomposition taking the arguments of its ``apply``. Its own backward is a gradient, not a
      DeepLIFT multiplier, so an unregistered Function is refused by name.
    - TensorFlow only: ``"identity"``, a value identity whose gradient passes through.

    ``data_inputs`` (TensorFlow): the input positions that may depend on the input (default: any).
    A registration replaces deepshap's own rule for ``op``, for every explainer created afterwards;
    :func:`unregister` gives ``op`` its own rule back, and :func:`registered` registers for the duration of
    a ``with`` block only (tests, one model).

    >>> import deepshap
    >>> deepshap.rules.register("Erfinv", "rescale")  # TensorFlow's tf.math.erfinv
    """
    if isinstance(op, str):
        if not isinstance(rule, str):
            raise TypeError(
                "A TensorFlow op type takes a rule kind (a string such as 'rescale'), not a function."
            )
        module = sys.modules.get(_BACKENDS["tensorflow"])
        if module is None:  # applied when the backend loads; checked now where that needs no framework
            _check_kind("tensorflow", rule)
            _PENDING_TENSORFLOW.append((op, rule, data_inputs))
        else:
            module.add(op, rule, data_inputs=data_inputs)
        return
    if not callable(op):
        raise TypeError(
            f"register() takes a PyTorch function or a TensorFlow op type (a string); got {op!r}."
        )
    module = sys.modules.get(_BACKENDS["torch"])
    if module is None:
        _check_kind("torch", rule)
        _PENDING_TORCH.append((op, rule))
    else:
        module.add(op, rule)


def unregister(op: str | NativeFunction) -> None:
    """Undo :func:`register` for ``op``: it gets deepshap's own rule back, or none where it had none."""
    framework = "tensorflow" if isinstance(op, str) else "torch"
    _PENDING_TORCH[:] = [entry for entry in _PENDING_TORCH if entry[0] is not op]
    _PENDING_TENSORFLOW[:] = [entry for entry in _PENDING_TENSORFLOW if entry[0] is not op]
    module = sys.modules.get(_BACKENDS[framework])
    if module is not None:
        module.remove(op)


@contextlib.contextmanager
def registered(
    op: str | NativeFunction, rule: str | NativeFunction, *, data_inputs: tuple[int, ...] | None = None
) -> Iterator[None]:
    """:func:`register` for the duration of a ``with`` block; afterwards ``op`` has the rule it had before
    (deepshap's own, an earlier registration, or none)."""
    framework = "tensorflow" if isinstance(op, str) else "torch"
    pending_before = list(_PENDING_TORCH), list(_PENDING_TENSORFLOW)
    module = sys.modules.get(_BACKENDS[framework])
    before = module.current(op) if module is not None else None
    register(op, rule, data_inputs=data_inputs)
    try:
        yield
    finally:
        _PENDING_TORCH[:], _PENDING_TENSORFLOW[:] = pending_before
        module = sys.modules.get(_BACKENDS[framework])
        if module is not None and before is not None:
            module.restore(op, before)
        elif module is not None:  # loaded during the block: op had deepshap's own rule before it
            module.remove(op)


def _check_kind(framework: str, rule: str | NativeFunction) -> None:
    kinds = {
        "torch": ("linear", "rescale", "shapley_pair", "bilinear"),
        "tensorflow": ("linear", "rescale", "shapley_pair", "bilinear", "identity"),
    }
    if isinstance(rule, str) and rule not in kinds[framework]:
        raise ValueError(
            f"Unknown rule {rule!r} for a {framework} operation; use one of {list(kinds[framework])}."
        )


def pending_torch() -> list[tuple[NativeFunction, str | NativeFunction]]:
    """The PyTorch registrations made before its backend loaded, ``(op, rule)`` (for its registry)."""
    return list(_PENDING_TORCH)


def pending_tensorflow() -> list[tuple[str, str, tuple[int, ...] | None]]:
    """The TensorFlow registrations made before its backend loaded, ``(op type, kind, data inputs)``."""
    return list(_PENDING_TENSORFLOW)
