"""The interception mode: a ``TorchFunctionMode`` that records rule arguments in the reference pass and
applies the rules in the pair pass (see :mod:`deepshap.frameworks.pytorch.deep` for the passes).

Each call whose arguments depend on the input is looked up in the registry
(:mod:`deepshap.frameworks.pytorch.registry`) by its function object: linear calls run untouched (their
gradient is exact), decompositions run with their primitives intercepted again, and the rest get their
handler. A call with no rule that carries the input into a floating result raises, naming it.
"""

from __future__ import annotations

import inspect
from collections.abc import Collection, Sequence
from types import TracebackType

import torch
from torch.overrides import TorchFunctionMode, resolve_name
from torch.utils._pytree import tree_flatten

from deepshap._typing import CallArgs, CallKwargs, CallValue, NativeFunction
from deepshap.errors import UnsupportedOperationError
from deepshap.frameworks.pytorch.pairing import TAG, Refs, depends, is_float
from deepshap.frameworks.pytorch.registry import RULES, OpRule
from deepshap.rules import Rule

__all__ = ["DeepMode", "OperationsDiffer"]

#: Per rule call of the reference pass, the function and its input-dependent arguments.
Records = list[tuple[NativeFunction, list[torch.Tensor]]]


class OperationsDiffer(RuntimeError):
    """The pass on (sample, reference) pairs called other operations than the pass on the references."""


_NAMES: dict[NativeFunction, str] = {}


def name_of(func: NativeFunction) -> str:
    """The name of a function for messages (``torch.nn.functional.relu``; the module and name of one
    that torch does not list, such as ``torch._pack_padded_sequence``)."""
    name = _NAMES.get(func)
    if name is None:
        try:
            name = resolve_name(func)
        except Exception:  # noqa: BLE001 - a name is only used in messages
            name = None
        if name is None:
            name = _qualified_name(func) or repr(func)
        _NAMES[func] = name
    return name


def _qualified_name(func: NativeFunction) -> str | None:
    """``module.qualname`` of a function torch does not list: a registered module's forward, a
    Function's apply, or a torch built-in such as ``torch._pack_padded_sequence``."""
    module = getattr(func, "__module__", None)
    # a built-in's __qualname__ names torch's internal class (_VariableFunctionsClass): use its __name__
    qualname = getattr(func, "__qualname__" if inspect.isfunction(func) else "__name__", None)
    return f"{module}.{qualname}" if module and qualname else None


class DeepMode(TorchFunctionMode):
    """Reference pass (``n_samples == 0``): records rule arguments. Pair pass: applies the rules."""

    def __init__(self, records: Records, n_samples: int, copy_records: bool = False, n_rows: int = 1) -> None:
        super().__init__()
        self.records = records
        self.n_samples = n_samples
        self.n_rows = n_rows  # background rows per sample in the pair pass
        self.inner_split = False  # a merged batch axis was split on the values (see Refs._axis)
        self.position = 0
        self.copy_records = copy_records
        self._versions: list[list[int]] = []  # version counters of the recorded tensors when recorded
        self.error: UnsupportedOperationError | None = None  # the last one raised (see __exit__)

    def __torch_function__(
        self,
        func: NativeFunction,
        types: Collection[type],
        args: Sequence[CallValue] = (),
        kwargs: CallKwargs | None = None,
    ) -> CallValue:
        try:
            return self._dispatch(func, args, dict(kwargs or {}))
        except UnsupportedOperationError as error:
            self.error = error
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """PyTorch turns a ``TypeError`` raised inside a binary operator (``h * mask``, ``h // 2``) into
        ``NotImplemented``, and Python then raises its own "unsupported operand type(s)";
        :class:`UnsupportedOperationError` is a ``TypeError``, so its message would be lost: raise it."""
        super().__exit__(exc_type, exc, traceback)
        if isinstance(exc, TypeError) and not isinstance(exc, UnsupportedOperationError) and self.error:
            raise self.error from exc

    def _dispatch(self, func: NativeFunction, args: Sequence[CallValue], kwargs: CallKwargs) -> CallValue:
        flat, _ = tree_flatten((args, kwargs))
        dependent = [t for t in flat if depends(t)]
        if not dependent:
            return func(*args, **kwargs)
        rule = RULES.get(func)
        if not torch.is_grad_enabled():
            return _without_gradients(func, args, kwargs, rule)
        if rule is None:
            return _unknown(func, args, kwargs)
        if rule.mask_product:
            masked = _masked_factor(args, kwargs)
            if masked is not None:  # value * mask with a mask computed from the input: a where
                value, mask = masked
                zero = torch.zeros((), dtype=value.dtype, device=value.device)
                with self:
                    if rule.out_of_place is None:
                        return torch.where(mask, value, zero)
                    if value is args[0]:  # h *= mask: the where's result copied back
                        return value.copy_(torch.where(mask, value, zero))
        linear = rule.kind is Rule.LINEAR
        condition = None
        if rule.operands is not None:  # a select
            operands = rule.operands(args, kwargs)
            if operands is None or not depends(operands[0]):  # a constant condition: linear
                linear = True
            else:
                condition = operands[0]
                if not (depends(operands[1]) or depends(operands[2])):
                    raise UnsupportedOperationError(
                        f"{name_of(func)} chooses between values that do not depend on the input, on a "
                        "condition that does (a step function); DeepLIFT has no rule for it."
                    )
        discrete = [t for t in dependent if not is_float(t) and t is not condition]
        if discrete and len(discrete) == len(dependent) and linear:
            return _unknown(func, args, kwargs)  # a view or copy of a mask: a mask again
        if discrete:
            raise UnsupportedOperationError(
                f"{name_of(func)} uses a mask or index computed from the input (a data-dependent selection); "
                "DeepLIFT has no rule for it. Compute masks from constants, or explain the model's "
                "input to this part instead."
            )
        if linear or (rule.linear_if is not None and rule.linear_if(args, kwargs)):
            if rule.check is not None:
                rule.check(name_of(func), args, kwargs)
            return _tag_discrete(func(*args, **kwargs), rule)
        if rule.kind is Rule.DECOMPOSE:
            with self:  # the primitives of the decomposition are intercepted again, each with its rule
                return rule.handler()(*args, **kwargs)
        if self.n_samples == 0:
            copy = self.copy_records or _inplace(rule, args, kwargs)
            saved = [t.detach().clone() if copy else t.detach() for t in dependent]
            self.records.append((func, saved))
            self._versions.append([t._version for t in saved])
            return _one_output(func, rule, func(*args, **kwargs))
        return self._apply_rule(func, rule, list(args), kwargs, dependent)

    def _apply_rule(
        self,
        func: NativeFunction,
        rule: OpRule,
        args: CallArgs,
        kwargs: CallKwargs,
        dependent: list[torch.Tensor],
    ) -> CallValue:
        name = name_of(func)
        if self.position >= len(self.records) or self.records[self.position][0] is not func:
            raise OperationsDiffer(
                f"the model's forward pass called {name} where the reference pass did not: deepshap needs a "
                "forward pass whose operations do not depend on the input values (no data-dependent "
                "control flow)."
            )
        refs = self.records[self.position][1]
        self.position += 1
        ref_of = Refs(dependent, refs, self.n_samples, self.n_rows)
        target = args[0] if args else None
        func, args, kwargs, inplace = _out_of_place(func, rule, args, kwargs)
        result = rule.handler()(func, name, args, kwargs, ref_of)
        self.inner_split |= ref_of.inner_split
        if inplace:
            if not isinstance(target, torch.Tensor):
                raise UnsupportedOperationError(
                    f"{name} works in place on an argument given by keyword; pass the tensor positionally."
                )
            target.copy_(result)
            return target
        return result

    def records_changed(self) -> bool:
        """Whether a recorded tensor was changed in place after it was recorded."""
        return any(
            t._version != version
            for (_, saved), versions in zip(self.records, self._versions, strict=True)
            for t, version in zip(saved, versions, strict=True)
        )

    def check_consumed(self) -> None:
        if self.position != len(self.records):
            raise RuntimeError(
                "the pair pass made fewer rule calls than the reference pass: the model's forward pass must "
                "not depend on the input values (no data-dependent control flow)."
            )


def _unknown(func: NativeFunction, args: Sequence[CallValue], kwargs: CallKwargs) -> CallValue:
    """Operations with no rule: fine when no floating result carries the input on, else an error."""
    out = func(*args, **kwargs)
    outputs, _ = tree_flatten(out)
    if any(is_float(t) for t in outputs) or not outputs:
        raise UnsupportedOperationError(
            f"DeepExplainer has no DeepLIFT/Shapley rule for {name_of(func)}, which the model applies to a "
            "tensor computed from its input. Rewrite that part with supported operations, give it a rule "
            "with deepshap.rules.register, or explain with GradientExplainer."
        )
    for t in outputs:
        if isinstance(t, torch.Tensor):
            setattr(t, TAG, True)
    return out


def _without_gradients(
    func: NativeFunction, args: Sequence[CallValue], kwargs: CallKwargs, rule: OpRule | None
) -> CallValue:
    """A call on the input with gradients disabled (a ``torch.no_grad()`` block, the forward of a custom
    autograd Function): no rule can reach the input there, so a floating result, which would carry the
    input on as a constant, is an error. Shapes, and integer or boolean results (masks), are as outside:
    the latter carry the input by their tag, which needs no gradient."""
    out = func(*args, **kwargs)
    if rule is not None and rule.value_free:  # zeros_like and the like: the shape only
        return out
    outputs, _ = tree_flatten(out)
    if any(is_float(t) for t in outputs) or not outputs:
        raise UnsupportedOperationError(_no_grad_message(func))
    for t in outputs:
        if isinstance(t, torch.Tensor):
            setattr(t, TAG, True)
    return out


def _no_grad_message(func: NativeFunction) -> str:
    """Why ``func``, called on the input with gradients disabled, cannot be explained, naming the custom
    ``torch.autograd.Function`` whose forward runs it where there is one (found by the frame of its
    ``apply``, a classmethod whose ``cls`` is the Function)."""
    frame = inspect.currentframe()
    while frame is not None:
        cls = frame.f_locals.get("cls") if frame.f_code.co_name == "apply" else None
        if isinstance(cls, type) and issubclass(cls, torch.autograd.Function):
            if f"{cls.__module__}.{cls.__qualname__}" == "torch.utils.checkpoint.CheckpointFunction":
                return (
                    f"DeepExplainer cannot carry the input through {name_of(func)}, which runs inside "
                    "activation checkpointing (torch.utils.checkpoint with use_reentrant=True), where "
                    "gradients are disabled. Explain with checkpointing off (for Hugging Face models, "
                    "model.gradient_checkpointing_disable()) or with use_reentrant=False."
                )
            return (
                f"DeepExplainer cannot carry the input through {name_of(func)}, which runs inside the "
                f"forward of the custom autograd Function {cls.__module__}.{cls.__qualname__}, where "
                "gradients are disabled. Give the Function a rule with "
                f"deepshap.rules.register({cls.__qualname__}, kind), a kind such as 'rescale', or a "
                "decomposition written in supported operations; or explain with GradientExplainer."
            )
        frame = frame.f_back
    return (
        f"DeepExplainer cannot carry the input through {name_of(func)}, which the model's forward runs "
        "with gradients disabled (a torch.no_grad() or torch.inference_mode() block): the input's "
        "contribution would be lost there. Compute that part with gradients enabled, or explain with "
        "GradientExplainer."
    )


def _one_output(func: NativeFunction, rule: OpRule, out: CallValue) -> CallValue:
    """``out``, checked to be one tensor where the rule applies to one (a user's Function registered with
    a kind may return several)."""
    if rule.kind in (Rule.RESCALE, Rule.SHAPLEY_PAIR, Rule.BILINEAR) and isinstance(out, tuple | list):
        raise UnsupportedOperationError(
            f"{name_of(func)} returns a {type(out).__name__} of {len(out)} outputs, but the {rule.kind} rule "
            "applies to one tensor: register a decomposition for it instead, written in supported "
            "operations and returning the same outputs."
        )
    return out


def _masked_factor(args: Sequence[CallValue], kwargs: CallKwargs) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Of a product ``value * mask`` (either order) whose boolean mask is computed from the input and
    whose floating value depends on it too: ``(value, mask)``, the product being ``where(mask, value, 0)``
    (``h * (h > 0)`` is a ReLU). None for any other product."""
    factors = [*args, *kwargs.values()]
    if len(factors) != 2 or not all(depends(t) for t in factors):
        return None
    for value, mask in (factors, factors[::-1]):
        if mask.dtype == torch.bool and is_float(value):
            return value, mask
    return None


def _tag_discrete(out: CallValue, rule: OpRule) -> CallValue:
    """Mark the integer or boolean results of a linear operation on the input (``x.to(torch.bool)``) as
    computed from it, so that using them as a mask or an index gets its rule or an error, never a
    constant's. Floating results (the usual case) are left as they are, at the cost of a dtype check."""
    if rule.value_free:  # zeros_like and the like: the result depends on the shape only
        return out
    for t in [out] if isinstance(out, torch.Tensor) else tree_flatten(out)[0]:
        if isinstance(t, torch.Tensor) and not is_float(t):
            setattr(t, TAG, True)
    return out


def _inplace(rule: OpRule, args: Sequence[CallValue], kwargs: CallKwargs) -> bool:
    if rule.out_of_place is not None:
        return True
    position = rule.inplace_arg
    if position is None:
        return False
    return bool(kwargs.get("inplace", args[position] if len(args) > position else False))


def _out_of_place(
    func: NativeFunction, rule: OpRule, args: CallArgs, kwargs: CallKwargs
) -> tuple[NativeFunction, CallArgs, CallKwargs, bool]:
    """The out-of-place form of a call, and whether the call was in place."""
    if rule.out_of_place is not None:
        return rule.out_of_place, args, kwargs, True
    position = rule.inplace_arg
    if position is not None:
        if "inplace" in kwargs:
            return func, args, {**kwargs, "inplace": False}, bool(kwargs["inplace"])
        if len(args) > position:
            return func, [*args[:position], False, *args[position + 1 :]], kwargs, bool(args[position])
    return func, args, kwargs, False
