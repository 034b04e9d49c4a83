"""Keras 3 / tf.keras adapter (TensorFlow backend).

Accepts a Sequential or functional model with one or several inputs, or the tuple
``(inputs, outputs)`` of Keras tensors, for example ``(model.layers[k].input, model.layers[-1].output)``,
from which a sub-model ``keras.Model(inputs, outputs)`` is built; that sub-model is then fed the layer's
activations (the explained level is whatever the model's inputs are). Models run with ``training=False``.
Output gradients run in a compiled ``tf.function``: one forward pass and one vector-Jacobian product
per selected output, from a persistent tape.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from deepshap._typing import InputData, NativeModel, NativeTensor
from deepshap.arrays import to_numpy
from deepshap.frameworks import output_matrix
from deepshap.frameworks._inputs import AdapterBase

__all__ = ["KerasModel", "TFOps"]


class TFOps:
    """:class:`~deepshap.frameworks.TensorOps` on TensorFlow tensors of one float dtype (tensors stay where
    TensorFlow placed them)."""

    def __init__(self, dtype: tf.DType) -> None:
        self.dtype = dtype

    def asarray(self, array: np.ndarray) -> tf.Tensor:
        array = np.asarray(array)
        dtype = self.dtype if array.dtype.kind == "f" else tf.int64
        return tf.cast(tf.convert_to_tensor(array), dtype)

    def take(self, tensor: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
        return tf.gather(tensor, index, axis=0)

    def reshape(self, tensor: tf.Tensor, shape: Sequence[int]) -> tf.Tensor:
        return tf.reshape(tensor, tuple(shape))

    def sum(self, tensor: tf.Tensor, axis: int) -> tf.Tensor:
        return tf.reduce_sum(tensor, axis=axis)

    def normal(self, shape: Sequence[int], std: float, seeds: np.ndarray) -> tf.Tensor:
        return _normal_rows(
            tf.constant(np.asarray(seeds, dtype=np.int64)),
            tf.constant(tuple(shape), dtype=tf.int32),
            tf.constant(std, dtype=self.dtype),
        )

    def concat(self, tensors: Sequence[tf.Tensor], axis: int) -> tf.Tensor:
        return tf.concat(list(tensors), axis=axis)


@tf.function(reduce_retracing=True)
def _normal_rows(seeds: tf.Tensor, shape: tf.Tensor, std: tf.Tensor) -> tf.Tensor:
    """Per seed, stateless Gaussian noise of ``shape``, stacked; one graph for all rows (a Python loop
    of eager calls costs ~0.5 ms a row)."""
    pairs = tf.stack([seeds, tf.zeros_like(seeds)], axis=1)
    return tf.map_fn(
        lambda pair: tf.random.stateless_normal(shape, seed=pair, stddev=std, dtype=std.dtype),
        pairs,
        fn_output_signature=std.dtype,
    )


class KerasModel(AdapterBase):
    """A Keras model (or the sub-model between two Keras tensors) as a function of tf tensors (a
    :class:`~deepshap.frameworks.ModelAdapter`)."""

    framework = "tensorflow"

    def __init__(self, model: NativeModel, data: InputData) -> None:
        if keras.backend.backend() != "tensorflow":
            raise RuntimeError(
                f"Keras runs on the {keras.backend.backend()!r} backend; deepshap explains Keras models on "
                "the TensorFlow backend (set KERAS_BACKEND=tensorflow before importing keras)."
            )
        self.model = _as_model(model)
        self.dtype = tf.as_dtype(_input_dtype(self.model))
        self.ops = TFOps(self.dtype)
        self.background = self._init_raw(data)
        self.multi_input = self._raw_multi
        self.n_inputs = len(self.background)
        n_model_inputs = len(_model_inputs(self.model)) or self.n_inputs
        if n_model_inputs != self.n_inputs:
            raise ValueError(
                f"the model takes {n_model_inputs} input(s) but data gives {self.n_inputs}; "
                "pass one background array per model input (a list for several)."
            )
        probe = self._call([b[:1] for b in self.background])
        self.n_outputs, _ = output_matrix(tuple(probe.shape), "the model")
        self.single_output = self.n_outputs == 1
        # a partial, so that TensorFlow counts this model's traces apart from other models' (it groups
        # functions by their code, and would warn of "retracing" after five explainers)
        self._gradients = tf.function(functools.partial(self._gradients_graph), reduce_retracing=True)

    def _convert(self, x: InputData, kind: str) -> tf.Tensor:
        if isinstance(x, tf.Tensor | tf.Variable):
            tensor = tf.convert_to_tensor(x)
        else:  # numpy, a torch tensor (bfloat16 read as float32), nested sequences
            tensor = tf.convert_to_tensor(to_numpy(x))
        return tf.cast(tensor, self.dtype)

    def _all_finite(self, tensor: tf.Tensor) -> bool:
        return bool(tf.reduce_all(tf.math.is_finite(tensor)))

    def to_numpy(self, tensor: tf.Tensor) -> np.ndarray:
        return to_numpy(tensor)

    def explained_inputs(self, raw: list[tf.Tensor]) -> list[tf.Tensor]:
        return list(raw)

    def _call(self, inputs: list[tf.Tensor]) -> tf.Tensor:
        out = self.model(inputs if self.multi_input else inputs[0], training=False)
        if isinstance(out, list | tuple | dict):
            raise TypeError(
                "the model has several outputs; deepshap explains models with one output tensor of shape "
                "(batch,) or (batch, n_outputs). Build a model with the output to explain."
            )
        return out

    def forward(self, inputs: list[tf.Tensor]) -> tf.Tensor:
        out = self._call(inputs)
        _, one_dim = output_matrix(tuple(out.shape), "the model")
        return out[:, None] if one_dim else out

    def _predict(self, inputs: list[tf.Tensor]) -> np.ndarray:
        return self.to_numpy(self.forward(inputs))

    def output_gradients(self, inputs: list[tf.Tensor], output_index: np.ndarray) -> list[tf.Tensor]:
        """See :meth:`~deepshap.frameworks.ModelAdapter.output_gradients`; at most ``_COLUMNS_PER_TRACE``
        VJPs per forward pass.

        The cap keeps each traced graph small (tracing time and graph memory grow with the number of
        VJPs in it), at the cost of one more forward pass per group of columns.
        """
        output_index = np.asarray(output_index, dtype=np.int64)
        groups = []
        for r0 in range(0, output_index.shape[1], _COLUMNS_PER_TRACE):
            columns = output_index[:, r0 : r0 + _COLUMNS_PER_TRACE]
            grads = self._gradients(list(inputs), tf.convert_to_tensor(columns), int(columns.shape[1]))
            missing = [i for i, g in enumerate(grads) if g is None]
            if missing:
                raise ValueError(
                    f"{_NO_GRADIENT} (no gradient reaches input(s) {missing}: unused by the explained "
                    "outputs, or turned into integers, as token ids for an Embedding are; explain the "
                    "embedding's output with the tuple form (embedding_layer.output, model.output))"
                )
            groups.append(grads)
        if len(groups) == 1:
            return list(groups[0])
        return [tf.concat([grads[i] for grads in groups], axis=1) for i in range(len(inputs))]

    def _gradients_graph(
        self, inputs: list[tf.Tensor], index: tf.Tensor, n_cols: int
    ) -> list[tf.Tensor | None]:
        """Traced once per number of columns (shapes relaxed): the forward pass, one VJP per column."""
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(inputs)
            selected = tf.gather(self.forward(inputs), index, batch_dims=1)
            columns = [tf.reduce_sum(selected[:, r]) for r in range(n_cols)]
        unconnected = tf.UnconnectedGradients.NONE
        per_column = [tape.gradient(c, inputs, unconnected_gradients=unconnected) for c in columns]
        return [
            None
            if any(col[i] is None for col in per_column)
            else tf.stack([col[i] for col in per_column], axis=1)
            for i in range(len(inputs))
        ]


_COLUMNS_PER_TRACE = 10

_NO_GRADIENT = (
    "the model output does not depend on its input through differentiable operations (no gradient); "
    "explain a model whose output is computed from its input"
)


def _as_model(model: NativeModel) -> keras.Model:
    """A Keras model, or the sub-model between Keras tensors ``(inputs, outputs)``."""
    if isinstance(model, keras.Model):
        return model
    if isinstance(model, tuple | list) and len(model) == 2:
        inputs, outputs = model
        try:
            return keras.Model(inputs=inputs, outputs=outputs)
        except Exception as exc:  # Keras raises several types for disconnected graphs
            raise ValueError(
                "could not build a model from the (inputs, outputs) Keras tensors: outputs must be computed "
                f"from inputs, as in (model.layers[k].input, model.layers[-1].output). Keras said: {exc}"
            ) from exc
    raise TypeError(
        f"expected a Keras model or an (inputs, outputs) pair of Keras tensors; got {type(model).__name__}."
    )


def _model_inputs(model: keras.Model) -> list[NativeTensor]:
    """The model's symbolic inputs; empty for a subclassed model that has none."""
    try:
        return list(model.inputs or [])
    except (AttributeError, ValueError):
        return []


def _input_dtype(model: keras.Model) -> str:
    dtypes = [getattr(t, "dtype", None) for t in _model_inputs(model)]
    floats = [d for d in dtypes if d is not None and tf.as_dtype(d).is_floating]
    return floats[0] if floats else "float32"
