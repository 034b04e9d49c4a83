"""Which PyTorch function gets which DeepLIFT/Shapley rule: one table, function object -> :class:`OpRule`.

The interception mode looks up the very function object it receives (``torch.split``, which arrives as
``torch.functional.split``, and ``torch.mm`` are the same objects under every name), so an entry cannot
miss its call under another name. The table is written as names for readability; every name must resolve
to a function when this module is imported. A function that is in no entry, produces a floating tensor
and has an input-dependent argument makes the explainer raise, naming it: an unknown operation is never
treated as linear. Users add entries with :func:`deepshap.rules.register`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from types import GetSetDescriptorType

import torch
import torch.nn.functional as F

from deepshap._typing import CallKwargs, CallValue, NativeFunction
from deepshap.frameworks.pytorch import attention as A
from deepshap.frameworks.pytorch import decompositions as D
from deepshap.frameworks.pytorch import handlers as H
from deepshap.frameworks.pytorch import recurrent as RNN
from deepshap.rules import Rule, maths, pending_torch

__all__ = [
    "FUNCTION_CALLS",
    "MODULE_CALLS",
    "RULES",
    "OpRule",
    "add",
    "current",
    "remove",
    "resolve",
    "restore",
]


@dataclass(frozen=True)
class OpRule:
    """The rule of one PyTorch function.

    ``kind``: the :class:`~deepshap.rules.Rule`. ``apply``: the handler of the pair pass (see
    :mod:`~deepshap.frameworks.pytorch.handlers`), or for ``DECOMPOSE`` the decomposition, called as the
    function; ``None`` for linear functions, which run untouched. ``linear_if(args, kwargs)``: whether a
    product call is linear in the input (one input-dependent factor) and runs untouched. ``check(name,
    args, kwargs)``: raises where a call has no rule (dropout in training mode, rounding division).
    ``operands(args, kwargs)``: of a select, ``(condition, chosen, other)``. ``out_of_place``: of an
    in-place method, its out-of-place partner; ``inplace_arg``: the position of an ``inplace`` flag.
    ``value_free``: the result depends on the input's shape only (``zeros_like``). ``mask_product``: a
    product whose other factor may be a boolean mask computed from the input (``h * (h > 0)``), which
    the mode rewrites as ``where(mask, h, 0)``.
    """

    kind: Rule
    apply: NativeFunction | None = None
    linear_if: Callable[[Sequence[CallValue], CallKwargs], bool] | None = None
    check: Callable[[str, Sequence[CallValue], CallKwargs], None] | None = None
    operands: H.Operands | None = None
    out_of_place: NativeFunction | None = None
    inplace_arg: int | None = None
    value_free: bool = False
    mask_product: bool = False

    def handler(self) -> NativeFunction:
        """``apply``, which every kind of rule but a linear one has."""
        if self.apply is None:
            raise TypeError(f"a {self.kind.value} rule has no handler to apply.")
        return self.apply


def resolve(name: str) -> NativeFunction:
    """The function object a ``TorchFunctionMode`` receives for ``name`` (``torch.Tensor.T``: its getter)."""
    obj: object = torch
    for part in name.split(".")[1:]:
        obj = getattr(obj, part)
    if isinstance(obj, property | GetSetDescriptorType):
        return obj.__get__
    if not callable(obj):
        raise TypeError(f"{name} is not a function; the rule table names functions only.")
    return obj


_F = "torch.nn.functional."
_T = "torch.Tensor."


def _names(prefixes: str, ops: str) -> list[str]:
    return [prefix + op for prefix in prefixes.split() for op in ops.split()]


_NAMED: dict[str, OpRule] = {}


def _put(names: list[str], rule: OpRule) -> None:
    _NAMED.update(dict.fromkeys(names, rule))


# --- linear: the ordinary gradient is the exact multiplier ----------------------------------------
_put(
    _names(
        "torch.",
        """
        add sub subtract neg negative positive sum mean nansum cumsum cat concat concatenate stack hstack
        vstack dstack flatten unflatten reshape squeeze unsqueeze transpose swapaxes swapdims permute
        movedim split tensor_split chunk unbind narrow select index_select gather take_along_dim flip fliplr
        flipud roll rot90 tile repeat_interleave t diagonal diag_embed tril triu trace conv1d conv2d conv3d
        conv_transpose1d conv_transpose2d conv_transpose3d squeeze_copy unsqueeze_copy broadcast_to
        broadcast_tensors atleast_1d atleast_2d atleast_3d ravel index_add index_copy scatter scatter_add
        real clone detach_copy avg_pool1d adaptive_avg_pool1d pixel_shuffle pixel_unshuffle channel_shuffle
        """,
    ),
    OpRule(Rule.LINEAR),
)
_put(
    _names(
        _T,
        """
        add add_ __add__ __radd__ __iadd__ sub sub_ __sub__ __rsub__ __isub__ neg neg_ __neg__ __pos__
        negative positive sum mean nansum cumsum flatten unflatten reshape reshape_as view view_as squeeze
        squeeze_ unsqueeze unsqueeze_ transpose transpose_ swapaxes permute movedim split split_with_sizes
        tensor_split chunk unbind narrow select index_select gather flip roll tile repeat repeat_interleave
        expand expand_as t T mT diagonal tril triu contiguous clone float double half bfloat16 to type
        type_as cpu cuda __getitem__ __setitem__ copy_ fill_ zero_ index_add index_add_ index_copy
        index_copy_ scatter scatter_ scatter_add scatter_add_ unfold ravel requires_grad_
        """,
    ),
    OpRule(Rule.LINEAR),
)
_put(
    _names(
        _F,
        """
        conv1d conv2d conv3d conv_transpose1d conv_transpose2d conv_transpose3d avg_pool1d avg_pool2d
        avg_pool3d adaptive_avg_pool1d adaptive_avg_pool2d adaptive_avg_pool3d interpolate upsample
        upsample_nearest upsample_bilinear pad pixel_shuffle pixel_unshuffle channel_shuffle unfold fold
        embedding one_hot
        """,
    ),
    OpRule(Rule.LINEAR),
)
_put(
    _names("torch.", "zeros_like ones_like empty_like full_like")
    + _names(_T, "new_zeros new_ones new_empty new_full new_tensor"),
    OpRule(Rule.LINEAR, value_free=True),
)
_put(
    _names(_F, "dropout dropout1d dropout2d dropout3d alpha_dropout feature_alpha_dropout"),
    OpRule(Rule.LINEAR, check=H.check_dropout),
)
_put([_F + "batch_norm"], OpRule(Rule.LINEAR, check=H.check_batch_norm))

# --- element-wise: rescale and the two-player split ------------------------------------------------
_put(
    _names(
        "torch. torch.Tensor.",
        """
        relu sigmoid tanh exp exp2 expm1 log log2 log10 log1p sqrt rsqrt abs clamp clip reciprocal
        erf sin cos sinc atan asinh arcsinh sinh cosh clamp_min clamp_max relu_ sigmoid_ tanh_ exp_
        """,
    )
    + _names(_T, "log_ sqrt_ rsqrt_ square_ abs_ clamp_ clip_ reciprocal_ clamp_min_ clamp_max_")
    + _names("torch. torch.Tensor.", "erfc absolute arctan arcsin asin acos arccos logit")
    + _names("torch.special.", "expit erf erfc exp2 expm1 log1p ndtr sinc logit")
    + _names(
        _F,
        """
        relu relu6 leaky_relu elu selu celu gelu silu mish hardswish hardsigmoid hardtanh sigmoid tanh
        softplus logsigmoid softsign tanhshrink threshold softshrink hardshrink rrelu relu_ elu_
        leaky_relu_ hardtanh_ celu_ selu_ threshold_ rrelu_
        """,
    ),
    OpRule(Rule.RESCALE, H.rescale),
)
_put(
    _names("torch. torch.Tensor.", "square"),
    OpRule(Rule.RESCALE, functools.partial(H.unary_closed_form, secant=maths.square_secant)),
)
_put(
    _names("torch. torch.Tensor.", "pow float_power maximum minimum fmax fmin atan2 arctan2 hypot logaddexp")
    + _names("torch. torch.Tensor.", "logaddexp2 xlogy")
    + _names(_T, "__pow__ __rpow__ pow_ __ipow__"),
    OpRule(Rule.SHAPLEY_PAIR, H.shapley_pair),
)

_MULTIPLY = functools.partial(H.binary_closed_form, multipliers=maths.product_multipliers)

# --- products --------------------------------------------------------------------------------------
_put(
    _names("torch.", "mul multiply") + _names(_T, "mul mul_ __mul__ __rmul__ __imul__ multiply"),
    OpRule(Rule.BILINEAR, _MULTIPLY, linear_if=H.one_factor, mask_product=True),
)

_put(
    _names("torch.", "div divide true_divide")
    + _names(_T, "div div_ divide true_divide __truediv__ __itruediv__ __div__"),
    OpRule(Rule.BILINEAR, H.divide, linear_if=H.constant_denominator, check=H.check_rounding),
)
_put(
    [_T + "__rtruediv__"],
    OpRule(
        Rule.BILINEAR,
        functools.partial(H.divide, reverse=True),
        linear_if=functools.partial(H.constant_denominator, reverse=True),
    ),
)
_put(
    _names("torch.", "matmul mm bmm einsum bilinear tensordot mv outer ger dot inner")
    + _names(_T, "matmul __matmul__ __rmatmul__ mm bmm mv outer ger dot inner")
    + _names(_F, "linear bilinear"),
    OpRule(Rule.BILINEAR, H.bilinear, linear_if=H.one_factor),
)
_put(
    _names("torch. torch.Tensor.", "addmm baddbmm addbmm addmv addr"),
    OpRule(
        Rule.BILINEAR,
        functools.partial(H.bilinear, additive_first=True),
        linear_if=functools.partial(H.one_factor, additive_first=True),
    ),
)

# --- max, softmax, normalisations, attention, select -----------------------------------------------
for _largest, _values_only, _short in (
    (True, False, "max"),
    (False, False, "min"),
    (True, True, "amax"),
    (False, True, "amin"),
):
    _put(
        _names("torch. torch.Tensor.", _short),
        OpRule(Rule.MAX, functools.partial(H.max_reduction, largest=_largest, values_only=_values_only)),
    )
for _adaptive in (False, True):
    for _spatial in (1, 2, 3):
        _base = f"{'adaptive_' if _adaptive else ''}max_pool{_spatial}d"
        for _suffix in ("", "_with_indices"):
            _pool = functools.partial(
                H.max_pool,
                pool=getattr(F, _base),
                spatial=_spatial,
                adaptive=_adaptive,
                with_indices=bool(_suffix),
            )
            _put([_F + _base + _suffix], OpRule(Rule.MAX, _pool))
for _kind in ("softmax", "log_softmax"):
    _put(
        _names("torch. torch.Tensor. torch.nn.functional. torch.special.", _kind),
        OpRule(Rule.SOFTMAX, functools.partial(H.softmax, kind=_kind)),
    )
_put(
    _names("torch. torch.Tensor. torch.special.", "logsumexp"),
    OpRule(Rule.SOFTMAX, functools.partial(H.softmax, kind="logsumexp")),
)
_put([_F + "softmin"], OpRule(Rule.SOFTMAX, functools.partial(H.softmax, kind="softmax", negate=True)))
for _kind in ("layer_norm", "group_norm", "rms_norm"):
    _put(
        _names("torch. torch.nn.functional.", _kind), OpRule(Rule.NORM, functools.partial(H.norm, kind=_kind))
    )
_put([_F + "scaled_dot_product_attention"], OpRule(Rule.ATTENTION, A.scaled_dot_product_attention))
_put([_F + "multi_head_attention_forward"], OpRule(Rule.ATTENTION, A.multi_head_attention))
_put(
    ["torch.where"],
    OpRule(
        Rule.SELECT,
        functools.partial(H.select, operands=H.where_operands(False)),
        operands=H.where_operands(False),
    ),
)
_put(
    [_T + "where"],
    OpRule(
        Rule.SELECT,
        functools.partial(H.select, operands=H.where_operands(True)),
        operands=H.where_operands(True),
    ),
)
_put(
    _names("torch. torch.Tensor.", "masked_fill") + [_T + "masked_fill_"],
    OpRule(
        Rule.SELECT,
        functools.partial(H.select, operands=H.masked_fill_operands),
        operands=H.masked_fill_operands,
    ),
)

# --- composites rewritten into primitives ----------------------------------------------------------
for _names_of, _decomposition in (
    (_names("torch. torch.Tensor.", "var"), D.var),
    (_names("torch. torch.Tensor.", "std"), D.std),
    (_names("torch. torch.Tensor.", "norm"), D.norm),
    (["torch.linalg.vector_norm"], D.linalg_vector_norm),
    ([_F + "normalize"], D.normalize),
    ([_F + "glu"], D.glu),
    ([_F + "instance_norm"], D.instance_norm),
    (_names("torch. torch.nn.functional.", "native_channel_shuffle"), D.channel_shuffle),
    (_names("torch. torch.Tensor.", "addcmul"), D.addcmul),
    (_names("torch. torch.Tensor.", "addcdiv"), D.addcdiv),
    ([_T + "addcmul_"], D.addcmul_),
    ([_T + "addcdiv_"], D.addcdiv_),
    *(
        (["torch." + _name], getattr(RNN, _name))
        for _name in "lstm gru rnn_tanh rnn_relu lstm_cell gru_cell rnn_tanh_cell rnn_relu_cell".split()
    ),
):
    _put(_names_of, OpRule(Rule.DECOMPOSE, _decomposition))

# --- in place: the rule runs out of place, then the result is copied back --------------------------
_INPLACE_DUNDERS = {"__imul__": "mul", "__itruediv__": "div", "__ipow__": "pow"}
_INPLACE_ARG = {
    **dict.fromkeys(_names(_F, "relu relu6 selu silu mish hardswish hardsigmoid"), 1),
    **dict.fromkeys(_names(_F, "leaky_relu elu celu"), 2),
    **dict.fromkeys(_names(_F, "hardtanh threshold"), 3),
    _F + "rrelu": 4,
    **dict.fromkeys(
        _names(_F, "dropout dropout1d dropout2d dropout3d alpha_dropout feature_alpha_dropout"), 3
    ),
}
for _name, _rule in list(_NAMED.items()):
    _short = _name.rsplit(".", 1)[-1]
    _prefix = _name[: -len(_short)]
    if _rule.kind is not Rule.LINEAR and _short in _INPLACE_DUNDERS:
        _NAMED[_name] = replace(_rule, out_of_place=resolve(_prefix + _INPLACE_DUNDERS[_short]))
    elif _rule.kind is not Rule.LINEAR and _short.endswith("_") and not _short.endswith("__"):
        _NAMED[_name] = replace(_rule, out_of_place=resolve(_prefix + _short[:-1]))
    elif _name in _INPLACE_ARG:
        _NAMED[_name] = replace(_rule, inplace_arg=_INPLACE_ARG[_name])

#: The rule of every function deepshap knows, keyed by the function object the mode receives.
RULES: dict[NativeFunction, OpRule] = {resolve(name): rule for name, rule in _NAMED.items()}
#: deepshap's own rules, which :func:`remove` puts back.
_BUILTIN: dict[NativeFunction, OpRule] = dict(RULES)
#: The names the table was written with (for tests and messages).
NAMES: tuple[str, ...] = tuple(_NAMED)

#: What a user may give a function with :func:`deepshap.rules.register`.
_REGISTRABLE: dict[str, OpRule] = {
    Rule.LINEAR: OpRule(Rule.LINEAR),
    Rule.RESCALE: OpRule(Rule.RESCALE, H.rescale),
    Rule.SHAPLEY_PAIR: OpRule(Rule.SHAPLEY_PAIR, H.shapley_pair),
    Rule.BILINEAR: OpRule(Rule.BILINEAR, H.bilinear, linear_if=H.one_factor),
}


#: The module classes given a rule, each with the function the mode receives for their calls.
MODULE_CALLS: dict[type, NativeFunction] = {}


def _module_call(cls: type[torch.nn.Module]) -> NativeFunction:
    """A function that runs ``cls.forward`` and that a ``TorchFunctionMode`` receives (with the module as
    first argument), so that the module's whole forward gets one rule."""

    def call(module: torch.nn.Module, *args: CallValue, **kwargs: CallValue) -> CallValue:
        tensors = tuple(t for t in (*args, *kwargs.values()) if isinstance(t, torch.Tensor))
        if torch.overrides.has_torch_function(tensors):
            return torch.overrides.handle_torch_function(call, tensors, module, *args, **kwargs)
        return cls.forward(module, *args, **kwargs)

    call.__module__, call.__name__ = cls.__module__, "forward"
    call.__qualname__ = f"{cls.__qualname__}.forward"
    return call


#: The custom ``torch.autograd.Function`` classes given a rule, each with the function that replaced
#: its ``apply`` (see :func:`_route_apply`).
FUNCTION_CALLS: dict[type, NativeFunction] = {}
#: Of those classes, the ``apply`` each defined itself (None: inherited), put back when unregistered.
_OWN_APPLY: dict[type, object | None] = {}


def _route_apply(cls: type[torch.autograd.Function]) -> NativeFunction:
    """Route ``cls.apply`` through a function that a ``TorchFunctionMode`` receives as the call to give a
    rule, and return that function; outside a mode it runs the original ``apply``.

    ``Function.apply`` itself is invisible to torch function modes (only the operations inside its
    forward are seen, with gradients disabled), so without this no rule could be looked up for it. The
    replacement is a classmethod that routes ``cls``'s own calls only: a subclass, which inherits it,
    runs its own forward through the original ``apply`` (and needs a registration of its own)."""
    own = vars(cls).get("apply")

    def original(klass: type[torch.autograd.Function]) -> NativeFunction:
        """The ``apply`` that ``klass`` had before ``cls`` was registered, bound to ``klass``."""
        if isinstance(own, classmethod):
            return functools.partial(own.__func__, klass)
        if isinstance(own, staticmethod):
            return own.__func__
        return super(cls, klass).apply  # type: ignore[misc]

    def call(*args: CallValue, **kwargs: CallValue) -> CallValue:
        tensors = tuple(t for t in (*args, *kwargs.values()) if isinstance(t, torch.Tensor))
        if torch.overrides.has_torch_function(tensors):
            return torch.overrides.handle_torch_function(call, tensors, *args, **kwargs)
        return original(cls)(*args, **kwargs)

    def apply(klass: type[torch.autograd.Function], *args: CallValue, **kwargs: CallValue) -> CallValue:
        return call(*args, **kwargs) if klass is cls else original(klass)(*args, **kwargs)

    call.__module__, call.__name__ = cls.__module__, "apply"
    call.__qualname__ = f"{cls.__qualname__}.apply"
    call.__wrapped__ = original(cls)  # type: ignore[attr-defined]
    cls.apply = classmethod(apply)  # type: ignore[assignment, method-assign]
    return call


def add(op: NativeFunction, rule: str | NativeFunction) -> None:
    """Give the function ``op`` a rule: a kind of :data:`_REGISTRABLE`, or a decomposition (a function
    with ``op``'s signature written in operations that have rules), replacing any rule it had. An
    ``nn.Module`` class takes a kind only: its instances' forward then gets that one rule. A
    ``torch.autograd.Function`` class takes either, with the signature of its ``apply``."""
    if isinstance(op, torch.nn.Module):
        raise TypeError(f"Register the class of a module, {type(op).__name__}, not one instance of it.")
    if isinstance(op, type) and issubclass(op, torch.autograd.Function):
        if op not in FUNCTION_CALLS:
            _OWN_APPLY[op] = vars(op).get("apply")
            FUNCTION_CALLS[op] = _route_apply(op)
        add(FUNCTION_CALLS[op], rule)
        return
    if isinstance(op, type):
        if not issubclass(op, torch.nn.Module) or not isinstance(rule, str):
            raise TypeError(
                f"A class can be registered only if it is a torch.nn.Module (with a rule kind) or a "
                f"torch.autograd.Function; got {op!r}, {rule!r}."
            )
        call = MODULE_CALLS.setdefault(op, _module_call(op))
        add(call, rule)
        return
    if callable(rule) and not isinstance(rule, str):
        RULES[op] = OpRule(Rule.DECOMPOSE, rule)
        return
    if rule not in _REGISTRABLE:
        raise ValueError(
            f"A PyTorch function can be registered as one of {sorted(str(k) for k in _REGISTRABLE)}, or with "
            f"a decomposition (a function); got {rule!r}."
        )
    RULES[op] = _REGISTRABLE[rule]


def current(op: NativeFunction) -> OpRule | None:
    """The rule ``op`` has now (for :func:`restore`)."""
    return RULES.get(_key(op))


def restore(op: NativeFunction, rule: OpRule) -> None:
    """Give ``op`` back a rule taken with :func:`current`."""
    RULES[_key(op)] = rule


def remove(op: NativeFunction) -> None:
    """Undo registrations for ``op``: deepshap's own rule, or none."""
    if isinstance(op, type) and issubclass(op, torch.autograd.Function) and op in FUNCTION_CALLS:
        RULES.pop(FUNCTION_CALLS.pop(op), None)
        own = _OWN_APPLY.pop(op)
        if own is None:
            del op.apply  # inherited from torch.autograd.Function again
        else:
            op.apply = own  # type: ignore[assignment, method-assign]
    elif isinstance(op, type):
        call = MODULE_CALLS.pop(op, None)
        if call is not None:
            RULES.pop(call, None)
    elif op in _BUILTIN:
        RULES[op] = _BUILTIN[op]
    else:
        RULES.pop(op, None)


def _key(op: NativeFunction) -> NativeFunction:
    """The key of ``op`` in :data:`RULES`: for a module or autograd Function class given a rule, the
    function its calls go through (:data:`MODULE_CALLS`, :data:`FUNCTION_CALLS`)."""
    if not isinstance(op, type):
        return op
    return MODULE_CALLS.get(op) or FUNCTION_CALLS.get(op) or op


for _op, _given in pending_torch():
    add(_op, _given)
