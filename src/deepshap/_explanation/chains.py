"""Operations on an Explanation: recorded in its ``op_history``, or chained lazily on the class.

On an instance an operation (``abs``, ``mean(0)``, ``[...]`` ...) runs, and the Explanation it returns
carries the caller's history plus an :class:`OpHistoryItem` for it. Accessed on the class, it builds an
:class:`OpChain` instead: ``Explanation.argsort.flip[:4]`` records "argsort, flip, take the first four" and
``.apply(explanation)`` runs it later (the Partition explainer uses that to pick the top outputs of each
sample).
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Concatenate, Generic, Literal, ParamSpec, TypeVar, overload

import numpy.typing as npt

from deepshap._explanation.layout import FIELDS

if TYPE_CHECKING:
    from deepshap.explanation import Explanation

P = ParamSpec("P")
R = TypeVar("R")

# A step of a chain: an attribute read, a call of the attribute just read, or an index.
_Step = (
    tuple[Literal["attr"], str]
    | tuple[Literal["call"], tuple[object, ...], dict[str, object]]
    | tuple[Literal["item"], object]
)
_REDUCTIONS = frozenset({"mean", "sum", "max", "min"})


@dataclass
class OpHistoryItem:
    """One operation applied to an Explanation, as shap records it in ``op_history``."""

    name: str
    prev_shape: tuple[int, ...]
    args: tuple[object, ...] = ()
    kwargs: dict[str, object] = field(default_factory=dict)
    collapsed_instances: bool = False


@functools.cache
def explanation_class() -> type[Explanation]:
    """The Explanation class (imported on first use: deepshap.explanation imports this module)."""
    from deepshap.explanation import Explanation

    return Explanation


def recorded(
    func: Callable[Concatenate[Explanation, P], R],
) -> Callable[Concatenate[Explanation, P], R]:
    """Append the call to the ``op_history`` of the Explanation it returns (the caller's history + it)."""
    name = func.__name__

    @functools.wraps(func)
    def record(self: Explanation, /, *args: P.args, **kwargs: P.kwargs) -> R:
        result = func(self, *args, **kwargs)
        if isinstance(result, explanation_class()) and result is not self:
            axis = kwargs.get("axis", args[0] if args and name in _REDUCTIONS else None)
            item = OpHistoryItem(name, self.shape, args, kwargs, collapsed_instances=axis == 0)
            result._history = (*self._history, item)
        return result

    return record


class OpChain:
    """A recorded chain of attribute accesses, calls and ``[...]`` indexing, applied later.

    Built by accessing an operation on the :class:`Explanation` class, e.g.
    ``Explanation.abs.mean(0).argsort.flip[:4]``; ``chain.apply(explanation)`` replays it.
    Chains are immutable: extending one returns a new chain.
    """

    __slots__ = ("_ops", "_root")

    def __init__(self, root: str = "Explanation", ops: tuple[_Step, ...] = ()) -> None:
        self._root = root
        self._ops = ops

    def _extend(self, op: _Step) -> OpChain:
        return OpChain(self._root, (*self._ops, op))

    def __getattr__(self, name: str) -> OpChain:
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in _chainable_names():
            raise AttributeError(
                f"Explanation has no operation or field {name!r} to chain; "
                f"available: {', '.join(sorted(_chainable_names()))}."
            )
        return self._extend(("attr", name))

    def __call__(self, *args: object, **kwargs: object) -> OpChain:
        last = self._ops[-1] if self._ops else None
        if last is None or last[0] != "attr":
            raise TypeError(
                f"{self!r} cannot be called: only a chained method such as .mean(0) takes arguments."
            )
        name = last[1]
        if name not in _operation_names(is_property=False):
            raise TypeError(f"Explanation.{name} is not a method: use {self!r} without parentheses.")
        return self._extend(("call", args, kwargs))

    def __getitem__(self, item: object) -> OpChain:
        return self._extend(("item", item))

    def __iter__(self) -> Iterator[object]:
        raise TypeError(f"{self!r} is a lazy selector, not a sequence: apply it with .apply(explanation).")

    def apply(self, obj: Explanation | npt.ArrayLike) -> object:
        """Run the recorded operations on ``obj`` (an Explanation; an array is wrapped in one first)."""
        explanation = explanation_class()
        # each step gives whatever the attribute, call or index it replays returns
        current: Any = obj if isinstance(obj, explanation) else explanation(obj)
        for op in self._ops:
            match op:
                case ("attr", name):
                    current = getattr(current, name)
                case ("call", args, kwargs):
                    current = current(*args, **kwargs)
                case (_, item):
                    current = current[item]
        return current

    def __repr__(self) -> str:
        out = self._root
        for op in self._ops:
            match op:
                case ("attr", name):
                    out += f".{name}"
                case ("call", args, kwargs):
                    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
                    out += f"({', '.join(parts)})"
                case (_, item):
                    out += f"[{_format_index(item)}]"
        return out


def _format_index(item: object) -> str:
    """Write an index the way it is typed: ``:4``, ``..., 2``, ``[0, 2]``."""
    if isinstance(item, tuple):
        return ", ".join(_format_index(i) for i in item)
    if isinstance(item, slice):
        text = ":".join("" if p is None else repr(p) for p in (item.start, item.stop))
        return text if item.step is None else f"{text}:{item.step!r}"
    if item is Ellipsis:
        return "..."
    return repr(item)


class _Operation:
    """Descriptor for an Explanation operation: runs on an instance, builds an OpChain on the class."""

    def __init__(self, func: Callable[..., object]) -> None:
        self.__doc__ = func.__doc__
        self.name = func.__name__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name


class OperationProperty(_Operation, Generic[R]):
    """An operation read as an attribute: ``explanation.abs``, ``Explanation.argsort``."""

    def __init__(self, func: Callable[[Explanation], R]) -> None:
        super().__init__(func)
        self.func = recorded(func)

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> OpChain: ...

    @overload
    def __get__(self, obj: Explanation, owner: type | None = None) -> R: ...

    def __get__(self, obj: Explanation | None, owner: type | None = None) -> OpChain | R:
        if obj is None:
            return getattr(OpChain(), self.name)
        return self.func(obj)


class OperationMethod(_Operation, Generic[P, R]):
    """An operation called as a method: ``explanation.mean(0)``, ``Explanation.mean(0)``."""

    def __init__(self, func: Callable[Concatenate[Explanation, P], R], *, record: bool = True) -> None:
        super().__init__(func)
        self.func = recorded(func) if record else func

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> OpChain: ...

    @overload
    def __get__(self, obj: Explanation, owner: type | None = None) -> Callable[P, R]: ...

    def __get__(self, obj: Explanation | None, owner: type | None = None) -> OpChain | Callable[P, R]:
        if obj is None:
            return getattr(OpChain(), self.name)
        return types.MethodType(self.func, obj)


def unrecorded_operation_method(func: Callable[Concatenate[Explanation, P], R]) -> OperationMethod[P, R]:
    """A method recorded as the operations it is made of (``sample`` as an ``__getitem__``, like shap)."""
    return OperationMethod(func, record=False)


@functools.cache
def _operation_names(is_property: bool) -> frozenset[str]:
    """The names of the Explanation's operations read as attributes, or called as methods."""
    kind = OperationProperty if is_property else OperationMethod
    return frozenset(n for n, v in vars(explanation_class()).items() if isinstance(v, kind))


def _chainable_names() -> frozenset[str]:
    return (
        frozenset(FIELDS)
        | {"compute_time", "shape", "output_dims"}
        | _operation_names(is_property=False)
        | _operation_names(is_property=True)
    )
