"""DeepExplainer: DeepSHAP (DeepLIFT multipliers averaged over a background), framework-neutral.

Backend interface (implemented once per framework)
--------------------------------------------------
Each framework provides, in ``deepshap.frameworks.<pytorch|keras>.deep``, the function::

    deep_attributions(adapter, inputs, output_index, batch_size) -> list[np.ndarray]

- ``adapter``: the model adapter from :func:`deepshap.frameworks.load_adapter`; its ``background`` (list of
  native tensors at the explained level, M rows) are the references.
- ``inputs``: list (one per model input) of native tensors at the explained level, N rows (already
  validated and converted by ``adapter.to_inputs`` + ``adapter.explained_inputs``).
- ``output_index``: ``(N, R)`` int64 numpy array; row i lists the model outputs explained for sample i.
- ``batch_size``: the number of (sample, background) pairs processed at once (bounds memory).
- returns one numpy array per input, shaped ``(N, *input_shape, R)``:
  ``phi[i, ..., r] = mean_j multipliers(x_i, b_j)[output_index[i, r]] * (x_i - b_j)``, where the
  multipliers are DeepLIFT/Shapley multipliers of the explained output with respect to the input.
  Each pair must satisfy summation-to-delta, so ``phi[i].sum() == f(x_i)[k] - mean_j f(b_j)[k]``.

The front-end here validates input, picks the outputs (``ranked_output``), calls the backend, checks
additivity and formats the result. It never imports a framework.
"""

from __future__ import annotations

import importlib
import time
from typing import TYPE_CHECKING

import numpy as np

from deepshap._typing import InputData, NativeModel
from deepshap.errors import AdditivityError
from deepshap.explainers._base import DifferentiableExplainer
from deepshap.explainers._layout import ShapValues

if TYPE_CHECKING:
    from deepshap.explanation import Explanation

__all__ = ["AdditivityError", "DeepExplainer"]

#: Largest accepted ``|sum(phi) - (f(x) - E f(b))|``, relative to the change explained (see check_additive).
ADDITIVITY_RTOL = 1e-4
ROUNDING_ULPS = 32  # float32 roundings of an output that its sum of SHAP values may miss it by
CANCELLATION_ULPS = 8  # roundings of sum(|SHAP values|) that their sum may miss the output by

_BACKENDS = {"torch": "deepshap.frameworks.pytorch.deep", "tensorflow": "deepshap.frameworks.keras.deep"}


class DeepExplainer(DifferentiableExplainer):
    """DeepSHAP: DeepLIFT multipliers against each background row, averaged over the background.

    ``model``: a torch ``nn.Module`` (one or several inputs), a ``(module, layer)`` pair (explains the
    layer's input), a Keras model or a Keras ``(inputs, outputs)`` pair. ``data``: the background, numpy or
    framework tensors, a list for several inputs. ``batch_size``: the number of (sample, background) pairs
    processed at once; memory grows with it, not with the background size.

    ``expected_value`` is the mean model output over the background, ``(K,)``: one entry per output, as
    in shap, so a single-output model has a ``(1,)`` array.
    """

    def __init__(self, model: NativeModel, data: InputData, batch_size: int = 256) -> None:
        super().__init__(model, data, batch_size)
        self._backend = importlib.import_module(_BACKENDS[self.adapter.framework])

    # public API -----------------------------------------------------------------------------------
    def shap_values(
        self,
        X: InputData,
        ranked_output: int | None = None,
        output_rank_order: str = "max",
        check_additivity: bool = True,
        ranked_outputs: int | None = None,
    ) -> ShapValues:
        """SHAP values in shap's layout (see :mod:`deepshap.explainers._layout`): ``(values, indexes)``
        with ``ranked_output``; ``ranked_outputs`` is the same argument under shap's other name."""
        phi, output_index, ranked, _ = self._explain(
            X, ranked_output, ranked_outputs, output_rank_order, check_additivity
        )
        return self._format(phi, output_index, ranked)

    def __call__(
        self,
        X: InputData,
        ranked_output: int | None = None,
        output_rank_order: str = "max",
        check_additivity: bool = True,
        ranked_outputs: int | None = None,
    ) -> Explanation | list[Explanation]:
        """An :class:`~deepshap.Explanation` (a list of them for several inputs) with base values."""
        start = time.perf_counter()
        phi, output_index, ranked, data = self._explain(
            X, ranked_output, ranked_outputs, output_rank_order, check_additivity
        )
        return self._explanation(phi, output_index, ranked, data, start)

    # the work -------------------------------------------------------------------------------------
    def _explain(
        self,
        X: InputData,
        ranked_output: int | None,
        ranked_outputs: int | None,
        output_rank_order: str,
        check_additivity: bool,
    ) -> tuple[list[np.ndarray], np.ndarray, bool, list[np.ndarray]]:
        adapter = self.adapter
        inputs = self._explained_inputs(X)
        outputs = adapter.predict(inputs, self.batch_size).astype(np.float64)
        output_index, ranked = self._output_index(
            inputs, ranked_output, ranked_outputs, output_rank_order, outputs
        )
        phi = self._backend.deep_attributions(adapter, inputs, output_index, self.batch_size)
        data = [adapter.to_numpy(x) for x in inputs]
        phi = self._in_values_dtype(X, phi, data)
        if check_additivity:
            explained = np.take_along_axis(outputs, output_index, axis=1)
            check_additive(phi, explained, self.expected_value[output_index])
        return phi, output_index, ranked, data


def check_additive(phi: list[np.ndarray], explained: np.ndarray, base_values: np.ndarray) -> None:
    """Raise :class:`AdditivityError` unless ``sum(phi) == f(x) - E f(b)`` for every explained output.

    The gap may be ``ADDITIVITY_RTOL`` of the change it explains, ``|f(x) - E f(b)|``, plus the mean
    change over all samples and explained outputs (so that outputs that barely move, such as tiny
    probabilities, are judged on the scale of the model's other changes), plus ``ROUNDING_ULPS`` float32
    roundings of the output itself (an output of 5000 is known to about 5e-4 only), plus
    ``CANCELLATION_ULPS`` roundings (in the attributions' dtype) of ``sum(|phi|)``: attributions that
    nearly cancel, as behind a softmax whose logits all move by 25, cannot add up more closely than their
    own rounding. It is not judged against the output's size: an offset of 5000 would then hide a wrong
    sum of a change of 0.2.
    """
    n, r = explained.shape
    total = sum(np.asarray(p, dtype=np.float64).reshape(n, -1, r).sum(axis=1) for p in phi)
    magnitude = sum(np.abs(np.asarray(p, dtype=np.float64)).reshape(n, -1, r).sum(axis=1) for p in phi)
    eps = max(np.finfo(p.dtype).eps if np.issubdtype(p.dtype, np.floating) else 0.0 for p in phi)
    target = explained - base_values
    rounding = ROUNDING_ULPS * np.finfo(np.float32).eps / ADDITIVITY_RTOL
    scale = (
        np.abs(target)
        + np.abs(target).mean()
        + rounding * np.maximum(np.abs(explained), np.abs(base_values))
        + CANCELLATION_ULPS * eps / ADDITIVITY_RTOL * magnitude
    )
    error = np.abs(total - target)
    relative = error / np.where(scale > 0, scale, 1.0)
    if np.all(relative <= ADDITIVITY_RTOL):
        return
    i, j = np.unravel_index(int(np.argmax(relative)), relative.shape)
    raise AdditivityError(
        f"The SHAP values do not add up to the model output minus the expected value: for sample {i}, "
        f"explained output {j}, sum(shap values) = {total[i, j]:.6g} but f(x) - E[f(background)] = "
        f"{target[i, j]:.6g} (relative error {relative[i, j]:.2e}, tolerance {ADDITIVITY_RTOL:.0e}). "
        "Usually an operation in the model has no exact DeepLIFT/Shapley rule (a custom autograd Function, "
        "an operation the backend treats as linear although it is not), the model is random (dropout or "
        "batch norm in training mode: call model.eval()), rows of a batch interact, or the model computes "
        "in half precision (float16 / bfloat16, as with mixed precision), whose rounding alone can exceed "
        "the tolerance. Explain a model built from supported operations, or pass check_additivity=False "
        "to skip this check."
    )
