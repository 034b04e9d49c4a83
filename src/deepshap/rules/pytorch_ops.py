"""Which PyTorch function gets which DeepLIFT/Shapley rule, as data (names, resolved by the backend).

Names are those :func:`torch.overrides.resolve_name` gives to the functions a ``TorchFunctionMode`` sees.
A function that is in none of these tables, produces a floating tensor and has an input-dependent
argument makes the explainer raise, naming it: an unknown operation is never treated as linear.
"""

from __future__ import annotations

from deepshap.rules import Rule

__all__ = ["INPLACE_ARG", "INPLACE_METHODS", "RULES"]

_F = "torch.nn.functional."
_T = "torch.Tensor."


def _names(prefixes: tuple[str, ...], ops: str) -> list[str]:
    return [prefix + op for prefix in prefixes for op in ops.split()]


_UNARY_TORCH = """
relu sigmoid tanh exp exp2 expm1 log log2 log10 log1p sqrt rsqrt square abs clamp clip reciprocal
erf sin cos sinc atan asinh arcsinh sinh cosh softplus
"""
_UNARY_F = """
relu relu6 leaky_relu elu selu celu gelu silu mish hardswish hardsigmoid hardtanh sigmoid tanh
softplus logsigmoid softsign tanhshrink threshold softshrink hardshrink rrelu
"""
_LINEAR_TORCH = """
add sub subtract neg negative positive sum mean nansum cumsum cat concat concatenate stack hstack
vstack dstack flatten unflatten reshape squeeze unsqueeze transpose swapaxes swapdims permute
movedim split tensor_split chunk unbind narrow select index_select gather take_along_dim flip fliplr
flipud roll rot90 tile repeat_interleave t diagonal diag_embed tril triu trace conv1d conv2d conv3d
conv_transpose1d conv_transpose2d conv_transpose3d squeeze_copy unsqueeze_copy broadcast_to
atleast_1d atleast_2d atleast_3d ravel index_add index_copy scatter scatter_add
real clone detach_copy avg_pool1d adaptive_avg_pool1d pixel_shuffle pixel_unshuffle channel_shuffle
native_channel_shuffle zeros_like ones_like empty_like full_like
"""
_LINEAR_TENSOR = """
add add_ __add__ __radd__ __iadd__ sub sub_ __sub__ __rsub__ __isub__ neg neg_ __neg__ __pos__
positive sum mean nansum cumsum flatten unflatten reshape reshape_as view view_as squeeze squeeze_
unsqueeze unsqueeze_ transpose transpose_ swapaxes permute movedim split split_with_sizes
tensor_split chunk unbind narrow select index_select gather flip roll tile repeat repeat_interleave
expand expand_as t T mT diagonal tril triu contiguous clone float double half bfloat16 to type
type_as cpu cuda __getitem__ __setitem__ copy_ fill_ zero_ index_add
index_add_ index_copy index_copy_ scatter scatter_ scatter_add scatter_add_ unfold ravel
requires_grad_ new_zeros new_ones new_empty new_full new_tensor
"""
_LINEAR_F = """
conv1d conv2d conv3d conv_transpose1d conv_transpose2d conv_transpose3d avg_pool1d avg_pool2d
avg_pool3d adaptive_avg_pool1d adaptive_avg_pool2d adaptive_avg_pool3d interpolate upsample
upsample_nearest upsample_bilinear pad pixel_shuffle pixel_unshuffle channel_shuffle unfold fold
embedding one_hot identity
"""
_BILINEAR_TORCH = """
mul multiply div divide true_divide matmul mm bmm baddbmm addmm addbmm einsum functional.einsum
bilinear
"""
_BILINEAR_TENSOR = """
mul mul_ __mul__ __rmul__ __imul__ div div_ divide true_divide __truediv__ __rtruediv__ __itruediv__
__div__
matmul __matmul__ __rmatmul__ mm bmm baddbmm addmm addbmm
"""
_MAX_TORCH = "max min amax amin"
_MAX_F = """
max_pool1d max_pool2d max_pool3d max_pool1d_with_indices max_pool2d_with_indices
max_pool3d_with_indices adaptive_max_pool1d adaptive_max_pool2d adaptive_max_pool3d
adaptive_max_pool1d_with_indices adaptive_max_pool2d_with_indices adaptive_max_pool3d_with_indices
"""

RULES: dict[str, Rule] = {}
RULES.update(dict.fromkeys(_names(("torch.", _T), _UNARY_TORCH), Rule.RESCALE))
RULES.update(
    dict.fromkeys(
        _names(
            (_T,),
            "relu_ sigmoid_ tanh_ exp_ log_ sqrt_ rsqrt_ square_ abs_ "
            "clamp_ clip_ reciprocal_ clamp_min clamp_max clamp_min_ clamp_max_",
        ),
        Rule.RESCALE,
    )
)
RULES.update(
    dict.fromkeys(_names(("torch.",), "relu_ sigmoid_ tanh_ exp_ clamp_min clamp_max"), Rule.RESCALE)
)
RULES.update(
    dict.fromkeys(
        _names((_F,), _UNARY_F + " relu_ elu_ leaky_relu_ hardtanh_ celu_ selu_ threshold_ rrelu_"),
        Rule.RESCALE,
    )
)
RULES.update(
    dict.fromkeys(
        _names(
            ("torch.", _T), "pow __pow__ __rpow__ pow_ __ipow__ float_power maximum minimum fmax fmin atan2"
        ),
        Rule.SHAPLEY_PAIR,
    )
)
RULES.update(dict.fromkeys(_names(("torch.",), _LINEAR_TORCH), Rule.LINEAR))
RULES.update(dict.fromkeys(_names((_T,), _LINEAR_TENSOR), Rule.LINEAR))
RULES.update(dict.fromkeys(_names((_F,), _LINEAR_F), Rule.LINEAR))
RULES.update(dict.fromkeys(_names((_F,), "linear bilinear"), Rule.BILINEAR))
RULES.update(dict.fromkeys(_names(("torch.",), _BILINEAR_TORCH), Rule.BILINEAR))
RULES.update(dict.fromkeys(_names((_T,), _BILINEAR_TENSOR), Rule.BILINEAR))
RULES.update(dict.fromkeys(_names(("torch.", _T), _MAX_TORCH), Rule.MAX))
RULES.update(dict.fromkeys(_names((_F,), _MAX_F), Rule.MAX))
RULES.update(dict.fromkeys(_names(("torch.", _T), "softmax log_softmax logsumexp"), Rule.SOFTMAX))
RULES.update(dict.fromkeys(_names((_F,), "softmax log_softmax softmin"), Rule.SOFTMAX))
RULES.update(dict.fromkeys(_names((_F,), "layer_norm group_norm rms_norm"), Rule.NORM))
RULES.update(dict.fromkeys(["torch.layer_norm", "torch.group_norm", "torch.rms_norm"], Rule.NORM))
RULES.update(
    dict.fromkeys(_names((_F,), "scaled_dot_product_attention multi_head_attention_forward"), Rule.ATTENTION)
)
RULES.update(dict.fromkeys(_names(("torch.", _T), "where masked_fill") + [_T + "masked_fill_"], Rule.SELECT))
RULES.update(dict.fromkeys(_names(("torch.", _T), "var std norm"), Rule.DECOMPOSE))
RULES.update(dict.fromkeys(_names((_F,), "glu normalize instance_norm"), Rule.DECOMPOSE))
RULES.update(dict.fromkeys(["torch.linalg.vector_norm", "torch.functional.norm"], Rule.DECOMPOSE))
# Operations whose linear reading depends on a flag (training mode): checked by the backend.
RULES.update(
    dict.fromkeys(
        _names(
            (_F,),
            "dropout dropout1d dropout2d dropout3d alpha_dropout feature_alpha_dropout batch_norm",
        ),
        Rule.LINEAR,
    )
)

#: In-place methods and their out-of-place partners (the rule runs out of place, then copies back).
INPLACE_METHODS: dict[str, str] = {
    name: name[:-1]
    for name in RULES
    if name.endswith("_") and not name.endswith("__") and RULES[name] is not Rule.LINEAR
}
INPLACE_METHODS.update(
    {_T + "__imul__": _T + "mul", _T + "__itruediv__": _T + "div", _T + "__ipow__": _T + "pow"}
)

#: Position of the ``inplace`` argument of torch.nn.functional activations (it may also come by keyword).
INPLACE_ARG: dict[str, int] = {
    _F + "relu": 1,
    _F + "relu6": 1,
    _F + "selu": 1,
    _F + "silu": 1,
    _F + "mish": 1,
    _F + "hardswish": 1,
    _F + "hardsigmoid": 1,
    _F + "leaky_relu": 2,
    _F + "elu": 2,
    _F + "celu": 2,
    _F + "hardtanh": 3,
    _F + "threshold": 3,
    _F + "rrelu": 4,
    _F + "dropout": 3,
    _F + "dropout1d": 3,
    _F + "dropout2d": 3,
    _F + "dropout3d": 3,
    _F + "alpha_dropout": 3,
    _F + "feature_alpha_dropout": 3,
}
