"""Names for the values deepshap hands to torch or TensorFlow without knowing their static type.

deepshap imports neither framework at module level (``import deepshap`` needs neither), and TensorFlow
ships no type information, so a native tensor or model cannot be typed more precisely than ``Any``
outside the framework's own backend. These aliases (and :data:`JSONObject`, for what a job reads back
from its JSON files) are where deepshap types a value as ``Any``: each says what the value is at run
time. Inside ``deepshap.frameworks.pytorch`` the real torch types are used wherever they are known.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

__all__ = [
    "Attributions",
    "CallArgs",
    "CallKwargs",
    "CallValue",
    "FunctionContext",
    "InputData",
    "JSONObject",
    "NativeDType",
    "NativeFunction",
    "NativeModel",
    "NativeTensor",
]

#: A tensor of the model's framework: a ``torch.Tensor`` or a ``tf.Tensor`` (eager or in a traced graph).
NativeTensor: TypeAlias = Any

#: The dtype of an array of any framework: a numpy dtype, a ``torch.dtype`` or a ``tf.DType``.
NativeDType: TypeAlias = Any

#: A model as the user gives it: a ``torch.nn.Module``, a ``(module, layer)`` pair, a Keras model or a
#: Keras ``(inputs, outputs)`` pair of symbolic tensors.
NativeModel: TypeAlias = Any

#: Attributions as an explainer returned them, to be measured: a deepshap or shap Explanation, shap's
#: layouts (an array, a list per output, ``(values, indexes)`` for ranked outputs), or torch / tf tensors.
Attributions: TypeAlias = Any

#: Data as the user gives it: a numpy array, a ``torch.Tensor`` or a ``tf.Tensor`` (or anything
#: ``np.asarray`` takes), or a list of them, one per model input.
InputData: TypeAlias = Any

#: An argument or the result of a framework function that deepshap intercepts: a tensor, a number, a
#: shape, a dtype, None, or a tuple or list of them, as the framework's function defines it.
CallValue: TypeAlias = Any
#: The positional and keyword arguments of such a call.
CallArgs: TypeAlias = list[CallValue]
CallKwargs: TypeAlias = dict[str, CallValue]

#: A framework function as deepshap intercepts it: a torch function, a ``torch.Tensor`` method, a
#: ``torch.library`` op, or a function a user registered.
NativeFunction: TypeAlias = Callable[..., CallValue]

#: The context of a ``torch.autograd.Function``, on which its forward stores what its backward needs.
FunctionContext: TypeAlias = Any

#: A JSON object as ``json.loads`` reads it (a job's manifest, a fingerprint): its values are whatever
#: JSON holds, checked where they are read.
JSONObject: TypeAlias = dict[str, Any]
