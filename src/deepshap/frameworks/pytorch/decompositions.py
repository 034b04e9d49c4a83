"""Composite PyTorch operations rewritten into primitives that have rules (var, std, norms, normalize,
glu, instance norm, addcmul, addcdiv). The interception mode runs a decomposition in place of the
operation, intercepting its primitives again, so each gets its own rule and the composite adds up
exactly."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from deepshap._typing import CallValue
from deepshap.errors import UnsupportedOperationError

__all__ = [
    "addcdiv",
    "addcdiv_",
    "addcmul",
    "addcmul_",
    "channel_shuffle",
    "glu",
    "instance_norm",
    "linalg_vector_norm",
    "norm",
    "normalize",
    "std",
    "var",
]

#: The axes of a reduction as torch takes them: one, several, or None for all.
Dims = int | Sequence[int] | None
#: The order of a norm: a number (``inf`` included), ``"fro"``, or None for 2.
Order = float | str | None


def _dims(x: torch.Tensor, dim: Dims) -> list[int]:
    if dim is None:
        return list(range(x.dim()))
    return [dim] if isinstance(dim, int) else list(dim)


def var(x: torch.Tensor, *args: CallValue, **kwargs: CallValue) -> torch.Tensor:
    """var(x, dim, unbiased/correction, keepdim) as mean-centring, square and sum."""
    rest = list(args)
    dim, unbiased = kwargs.get("dim"), kwargs.get("unbiased")
    if rest and isinstance(rest[0], bool):
        unbiased = rest.pop(0)
    elif rest:
        dim = rest.pop(0)
    if rest and isinstance(rest[0], bool) and unbiased is None:
        unbiased = rest.pop(0)
    keepdim = bool(rest.pop(0)) if rest else bool(kwargs.get("keepdim", False))
    correction = kwargs.get("correction")
    correction = (1 if unbiased in (None, True) else 0) if correction is None else correction
    dims = _dims(x, dim)
    count = math.prod(x.shape[d] for d in dims)
    centred = x - x.mean(dims, keepdim=True)
    return torch.square(centred).sum(dims, keepdim=keepdim) / max(count - correction, 0)


def std(x: torch.Tensor, *args: CallValue, **kwargs: CallValue) -> torch.Tensor:
    return torch.sqrt(var(x, *args, **kwargs))


def _vector_norm(x: torch.Tensor, p: Order, dim: Dims, keepdim: bool) -> torch.Tensor:
    dims = _dims(x, dim)
    if p in (2, 2.0, "fro", None):
        return torch.sqrt(torch.square(x).sum(dims, keepdim=keepdim))
    if p in (1, 1.0):
        return torch.abs(x).sum(dims, keepdim=keepdim)
    if p in (math.inf, float("inf")):
        return torch.abs(x).amax(dims, keepdim=keepdim)
    raise UnsupportedOperationError(f"a norm of order {p!r} has no rule; use p=1, 2 or inf.")


def norm(
    x: torch.Tensor,
    p: Order = "fro",
    dim: Dims = None,
    keepdim: bool = False,
    out: torch.Tensor | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    return _vector_norm(x if dtype is None else x.to(dtype), p, dim, keepdim)


def linalg_vector_norm(
    x: torch.Tensor,
    ord: Order = 2,
    dim: Dims = None,
    keepdim: bool = False,
    *,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    return _vector_norm(x if dtype is None else x.to(dtype), ord, dim, keepdim)


def normalize(
    x: torch.Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out: torch.Tensor | None = None
) -> torch.Tensor:
    return x / _vector_norm(x, p, dim, True).clamp_min(eps)


def glu(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    a, b = x.chunk(2, dim)
    return a * torch.sigmoid(b)


def instance_norm(
    x: torch.Tensor,
    running_mean: torch.Tensor | None = None,
    running_var: torch.Tensor | None = None,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> torch.Tensor:
    """Per-sample, per-channel normalisation over the spatial axes (or by running statistics)."""
    shape = (1, -1) + (1,) * (x.dim() - 2)
    if use_input_stats:
        dims = list(range(2, x.dim()))
        centred = x - x.mean(dims, keepdim=True)
        out = centred * torch.rsqrt(torch.square(centred).mean(dims, keepdim=True) + eps)
    elif running_mean is None or running_var is None:
        raise ValueError("instance_norm with use_input_stats=False needs running_mean and running_var.")
    else:
        out = (x - running_mean.reshape(shape)) / torch.sqrt(running_var.reshape(shape) + eps)
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """``native_channel_shuffle`` (which has no derivative) as a reshape, a transpose and a reshape."""
    n, c = x.shape[:2]
    return x.reshape(n, groups, c // groups, *x.shape[2:]).transpose(1, 2).reshape(x.shape)


def addcmul(
    x: torch.Tensor, tensor1: torch.Tensor, tensor2: torch.Tensor, *, value: float = 1
) -> torch.Tensor:
    """``x + value * tensor1 * tensor2`` (a fused affine layer, ResMLP's, or ConvNeXt V2's response norm):
    a sum and a product, each with its rule."""
    return x + value * (tensor1 * tensor2)


def addcdiv(
    x: torch.Tensor, tensor1: torch.Tensor, tensor2: torch.Tensor, *, value: float = 1
) -> torch.Tensor:
    """``x + value * tensor1 / tensor2``: a sum and a quotient, each with its rule."""
    return x + value * (tensor1 / tensor2)


def addcmul_(
    x: torch.Tensor, tensor1: torch.Tensor, tensor2: torch.Tensor, *, value: float = 1
) -> torch.Tensor:
    """In-place :func:`addcmul`."""
    return x.copy_(addcmul(x, tensor1, tensor2, value=value))


def addcdiv_(
    x: torch.Tensor, tensor1: torch.Tensor, tensor2: torch.Tensor, *, value: float = 1
) -> torch.Tensor:
    """In-place :func:`addcdiv`."""
    return x.copy_(addcdiv(x, tensor1, tensor2, value=value))
