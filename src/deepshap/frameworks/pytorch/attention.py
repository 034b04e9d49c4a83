"""The attention rules: ``scaled_dot_product_attention`` and ``multi_head_attention_forward`` read from
their arguments and computed as projections (linear), q k^T (bilinear), softmax and weights times values
(bilinear), each with its DeepLIFT/Shapley rule (:func:`deepshap.frameworks.pytorch.deep_rules.attention`)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from deepshap._typing import CallArgs, CallKwargs, NativeFunction
from deepshap.errors import UnsupportedOperationError
from deepshap.frameworks.pytorch import deep_rules as R
from deepshap.frameworks.pytorch.deep_rules import Pair
from deepshap.frameworks.pytorch.pairing import Refs, depends, pair_of

__all__ = ["multi_head_attention", "scaled_dot_product_attention"]


def scaled_dot_product_attention(
    func: NativeFunction, name: str, args: CallArgs, kwargs: CallKwargs, ref_of: Refs
) -> torch.Tensor:
    """F.scaled_dot_product_attention (its masks constants), with grouped-query heads repeated."""
    names = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")
    b = dict(zip(names, args, strict=False)) | kwargs
    if b.get("dropout_p", 0.0):
        raise UnsupportedOperationError(
            "scaled_dot_product_attention with dropout_p > 0 is random; use dropout_p=0."
        )
    _check_constant_masks("scaled_dot_product_attention", b, ("attn_mask",))
    q, k, v = (pair_of(b[key], ref_of) for key in ("query", "key", "value"))
    if b.get("enable_gqa") and k.x.shape[-3] != q.x.shape[-3]:
        rep = q.x.shape[-3] // k.x.shape[-3]
        k, v = (p.map(lambda t: t.repeat_interleave(rep, dim=-3)) for p in (k, v))
    scale = b.get("scale") or 1.0 / math.sqrt(q.x.shape[-1])
    mask = R.additive_mask(b.get("attn_mask"), bool(b.get("is_causal")), (q.x.shape[-2], k.x.shape[-2]), q.x)
    return R.attention(q, k, v, mask, scale)[0].x


_MHA_ARGS = (
    "query key value embed_dim_to_check num_heads in_proj_weight in_proj_bias bias_k bias_v add_zero_attn "
    "dropout_p out_proj_weight out_proj_bias training key_padding_mask need_weights attn_mask "
    "use_separate_proj_weight q_proj_weight k_proj_weight v_proj_weight static_k static_v "
    "average_attn_weights is_causal"
).split()


def multi_head_attention(
    func: NativeFunction, name: str, args: CallArgs, kwargs: CallKwargs, ref_of: Refs
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """F.multi_head_attention_forward as projections, attention per head and the output projection."""
    b = dict(zip(_MHA_ARGS, args, strict=False)) | kwargs
    if b.get("bias_k") is not None or b.get("add_zero_attn") or b.get("static_k") is not None:
        raise UnsupportedOperationError(
            "multi-head attention with bias_k/add_zero_attn/static_k has no rule."
        )
    if b.get("training", True) and b.get("dropout_p", 0.0):
        raise UnsupportedOperationError(
            "multi-head attention with dropout in training mode; call model.eval()."
        )
    query, key, value = (pair_of(b[k], ref_of) for k in ("query", "key", "value"))
    unbatched = query.x.dim() == 2
    if unbatched:
        query, key, value = (p.map(lambda t: t.unsqueeze(1)) for p in (query, key, value))
    tgt_len, bsz, embed = query.x.shape
    heads = int(b["num_heads"])
    head_dim = embed // heads
    if b.get("use_separate_proj_weight"):
        weights = (b["q_proj_weight"], b["k_proj_weight"], b["v_proj_weight"])
    else:
        weights = b["in_proj_weight"].chunk(3)
    biases = (None,) * 3 if b.get("in_proj_bias") is None else b["in_proj_bias"].chunk(3)

    def project(p: Pair, w: torch.Tensor, bias: torch.Tensor | None) -> Pair:
        return p.map(lambda t: F.linear(t, w, bias)).map(
            lambda t: t.reshape(t.shape[0], bsz * heads, head_dim).transpose(0, 1)
        )

    q, k, v = (project(p, w, bias) for p, w, bias in zip((query, key, value), weights, biases, strict=True))
    src_len = k.x.shape[1]
    mask = _mha_mask(b, bsz, heads, tgt_len, src_len, q.x)
    out, weights_pair = R.attention(q, k, v, mask, 1.0 / math.sqrt(head_dim))
    out = out.map(lambda t: t.transpose(0, 1).reshape(tgt_len, bsz, embed))
    out = out.map(lambda t: F.linear(t, b["out_proj_weight"], b.get("out_proj_bias")))
    attn = None
    if b.get("need_weights", True):
        attn = weights_pair.x.reshape(bsz, heads, tgt_len, src_len)
        if b.get("average_attn_weights", True):
            attn = attn.mean(dim=1)
        if unbatched:
            attn = attn.squeeze(0)
    result = out.x.squeeze(1) if unbatched else out.x
    return result, attn


def _check_constant_masks(name: str, bound: CallKwargs, keys: tuple[str, ...]) -> None:
    """Attention masks are added to the scores as constants: one computed from the input is an error."""
    for key in keys:
        if depends(bound.get(key)):
            raise UnsupportedOperationError(
                f"The {key} of {name} is computed from the model's input (a position bias, say), but "
                "its rule here takes it for a constant. Add it to the scores yourself, "
                "softmax(q @ k.transpose(-2, -1) * scale + mask) @ v, which is supported."
            )


def _mha_mask(
    b: CallKwargs, bsz: int, heads: int, tgt: int, src: int, like: torch.Tensor
) -> torch.Tensor | None:
    _check_constant_masks("multi-head attention", b, ("attn_mask", "key_padding_mask"))
    attn_mask = b.get("attn_mask")
    if attn_mask is not None and attn_mask.dtype == torch.bool:
        attn_mask = ~attn_mask  # multi-head attention masks True = may not attend; additive_mask keeps True
    attn_mask = R.additive_mask(attn_mask, False, (tgt, src), like)
    if b.get("is_causal") and attn_mask is None:
        attn_mask = R.additive_mask(None, True, (tgt, src), like)
    padding = b.get("key_padding_mask")
    if padding is None:
        return attn_mask
    if padding.dtype == torch.bool:
        pad = torch.zeros(padding.shape, dtype=like.dtype, device=like.device).masked_fill(padding, -math.inf)
    else:
        pad = padding.to(like.dtype)
    pad = pad.reshape(bsz, 1, 1, src).expand(bsz, heads, 1, src).reshape(bsz * heads, 1, src)
    pad = pad.clamp(min=torch.finfo(like.dtype).min / 4)
    return pad if attn_mask is None else (attn_mask + pad).clamp(min=torch.finfo(like.dtype).min / 4)
