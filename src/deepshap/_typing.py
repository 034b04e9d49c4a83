"""Names for the values deepshap hands to torch or TensorFlow without knowing their static type.

deepshap imports neither framework at module level (``import deepshap`` needs neither), and TensorFlow
ships no type information, so a native tensor or model cannot be typed more precisely than ``Any``
outside the framework's own backend. These aliases are the only places where deepshap types a value as
``Any``: each says what the value is at run time. Inside ``deepshap.frameworks.pytorch`` the real torch
types are used instead.
"""

from __future__ import annotations

from typing import Any, TypeAlias

__all__ = ["InputData", "NativeDType", "NativeModel", "NativeTensor"]

#: A tensor of the model's framework: a ``torch.Tensor`` or a ``tf.Tensor`` (eager or in a traced graph).
NativeTensor: TypeAlias = Any

#: The dtype of an array of any framework: a numpy dtype, a ``torch.dtype`` or a ``tf.DType``.
NativeDType: TypeAlias = Any

#: A model as the user gives it: a ``torch.nn.Module``, a ``(module, layer)`` pair, a Keras model or a
#: Keras ``(inputs, outputs)`` pair of symbolic tensors.
NativeModel: TypeAlias = Any

#: Data as the user gives it: a numpy array, a ``torch.Tensor`` or a ``tf.Tensor`` (or anything
#: ``np.asarray`` takes), or a list of them, one per model input.
InputData: TypeAlias = Any
