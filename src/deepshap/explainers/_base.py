"""What DeepExplainer and GradientExplainer share: model loading, expected values and return formats.

Both explain a differentiable model through a framework adapter (:func:`deepshap.frameworks.load_adapter`),
compute canonical attributions ``(N, *input_shape, R)`` per input, and hand them back in one of shap's two
return layouts (:mod:`._layout`), as plain arrays (``shap_values``) or Explanations (``__call__``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from deepshap._typing import InputData, NativeModel, NativeTensor
from deepshap.explainers._layout import (
    ShapValues,
    Values,
    build_explanation,
    format_values,
    layout_values,
    resolve_layout,
)
from deepshap.explainers._outputs import resolve_ranked_output, select_outputs

if TYPE_CHECKING:
    from deepshap.explanation import Explanation

__all__ = ["DifferentiableExplainer", "positive_int"]


class DifferentiableExplainer:
    """Base of the explainers that use a model's own gradients.

    ``expected_value`` is the mean model output over the background, a ``(K,)`` float64 array with one
    entry per output, a single-output model included (shap's DeepExplainer does the same, so
    ``expected_value[0]`` works for any model). ``shap_layout`` fixes the return layout for a subclass;
    None reads ``DEEPSHAP_SHAP_LAYOUT`` at every call (see :mod:`deepshap.explainers._layout`).
    """

    shap_layout: ClassVar[str | None] = None

    def __init__(self, model: NativeModel, data: InputData, batch_size: int) -> None:
        from deepshap.frameworks import load_adapter

        self.batch_size = positive_int(batch_size, "batch_size")
        self.adapter = load_adapter(model, data)
        background_outputs = self.adapter.predict(self.adapter.background, self.batch_size)
        self.expected_value: np.ndarray = background_outputs.astype(np.float64).mean(axis=0)

    # helpers for the subclasses ------------------------------------------------------------------------
    def _explained_inputs(self, X: InputData) -> list[NativeTensor]:
        """X checked against the background and taken to the explained level (a layer's input)."""
        return self.adapter.explained_inputs(self.adapter.to_inputs(X, "X"))

    def _output_index(
        self,
        inputs: list[NativeTensor],
        ranked_output: int | None,
        ranked_outputs: int | None,
        output_rank_order: str,
        outputs: np.ndarray | None = None,
    ) -> tuple[np.ndarray, bool]:
        """The ``(N, R)`` outputs to explain per sample, and whether they were ranked.

        ``outputs`` are the model outputs on ``inputs`` when the caller has them; ranking needs them.
        """
        ranked = resolve_ranked_output(ranked_output, ranked_outputs)
        if outputs is None and ranked is not None:
            outputs = self.adapter.predict(inputs, self.batch_size)
        if outputs is None:
            n = int(inputs[0].shape[0])
            return np.tile(np.arange(self.adapter.n_outputs, dtype=np.int64), (n, 1)), False
        return select_outputs(outputs, ranked, output_rank_order), ranked is not None

    @staticmethod
    def _in_values_dtype(X: InputData, phi: list[np.ndarray], data: Sequence[np.ndarray]) -> list[np.ndarray]:
        """``phi`` in the dtype shap returns: float64 when the user's X is float64 (the model may compute
        in float32; shap's TensorFlow explainer multiplies by ``x - reference`` in X's precision), else
        the model's float dtype (float32 at least)."""
        items = X if isinstance(X, list | tuple) else [X]
        if any(_is_float64(x) for x in items):
            dtype = np.dtype(np.float64)
        else:
            dtype = np.result_type(*[d.dtype for d in data], np.float32)
        return [p.astype(dtype, copy=False) for p in phi]

    def _format(self, phi: Sequence[np.ndarray], output_index: np.ndarray, ranked: bool) -> ShapValues:
        """Attributions as ``shap_values`` returns them, in the layout in force."""
        return format_values(
            phi,
            resolve_layout(self.shap_layout),
            self.adapter.single_output,
            self.adapter.multi_input,
            output_index,
            ranked,
        )

    def _values(self, phi: Sequence[np.ndarray], ranked: bool) -> Values:
        """:meth:`_format` without the output indexes of ranked outputs."""
        layout = resolve_layout(self.shap_layout)
        return layout_values(phi, layout, self.adapter.single_output, self.adapter.multi_input, ranked)

    def _explanation(
        self,
        phi: Sequence[np.ndarray],
        output_index: np.ndarray,
        ranked: bool,
        data: Sequence[np.ndarray],
        start: float,
    ) -> Explanation | list[Explanation]:
        """Attributions as ``__call__`` returns them: Explanation(s) with the mean background outputs."""
        return build_explanation(
            phi,
            self.expected_value[output_index],
            data,
            output_index,
            resolve_layout(self.shap_layout),
            single_output=self.adapter.single_output,
            ranked=ranked,
            compute_time=time.perf_counter() - start,
        )


def positive_int(value: object, name: str) -> int:
    """``value`` as an int, or a ValueError naming ``name`` unless it is a positive integer."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}.")
    return int(value)


def _is_float64(x: InputData) -> bool:
    """Whether ``x`` (numpy, a torch or tf tensor, a pandas frame) holds float64 numbers."""
    dtype = getattr(x, "dtype", None)
    if dtype is None and hasattr(x, "to_numpy"):  # a pandas DataFrame has one dtype per column
        dtype = x.to_numpy().dtype
    name = getattr(dtype, "name", None) or str(dtype)
    return name.removeprefix("torch.") in ("float64", "double")
