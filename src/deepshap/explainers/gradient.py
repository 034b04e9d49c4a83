"""GradientExplainer: expected gradients (SHAP values as an integral of gradients over the background).

For a sample x, a background x' and alpha ~ U(0, 1), with x~ = x + N(0, local_smoothing^2) noise,

    phi(x) = E_{x', alpha} [ (x~ - x') * grad f(x' + alpha (x~ - x')) ]

(Erion et al., "Improving performance of deep learning models with axiomatic attribution priors and
expected gradients"). The attributions of each output add up, in expectation, to f(x) - E f(x').

The expectation is estimated from ``nsamples`` draws per sample with a control variate: writing
d = x~ - x' and g the gradient, the estimate is mean(d g) - (mean(d) - (x - E x')) mean(g). The
correction has expectation zero up to O(1/nsamples) and removes the noise of the drawn backgrounds
along a constant gradient, so a linear model gets ``(x - mean background) * w`` exactly for any
nsamples. The reported variance is the variance of that estimate: the sample variance of its terms
divided by nsamples.

The algorithm lives here once; the framework adapter supplies forward passes, output gradients (one
forward pass and one vector-Jacobian product per explained output, shared by every sample in a batch)
and a few tensor helpers. Every pass holds at most ``batch_size`` interpolated rows, so memory is bounded
whatever the background size, nsamples or number of outputs; tensors stay on the model's device until
the sums are complete.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from deepshap._typing import InputData, NativeModel, NativeTensor
from deepshap.explainers._base import DifferentiableExplainer, positive_int
from deepshap.explainers._layout import ShapValues, Values

if TYPE_CHECKING:
    from deepshap.explanation import Explanation
    from deepshap.frameworks import TensorOps

__all__ = ["GradientExplainer"]

# At most this many gradient values (rows x outputs x features) are held at once; more outputs than
# fit are computed in several groups, each with its own forward pass.
_MAX_GRADIENT_ELEMENTS = 1 << 25


class GradientExplainer(DifferentiableExplainer):
    """Expected-gradients SHAP values for PyTorch and Keras/TensorFlow models.

    ``model``: a ``torch.nn.Module`` (one or several inputs), ``(module, layer)`` to explain the input of
    ``layer`` (background and X are raw model inputs), a Keras model, or Keras tensors
    ``(model.layers[k].input, model.layers[-1].output)`` (then background and X are that layer's input).
    ``data``: the background, an array or tensor, or a list of them for several inputs. Torch models are
    put in eval mode; Keras models run with ``training=False``. ``rseed`` makes a call reproducible,
    whatever ``batch_size`` (up to float rounding): every draw (background row, position on the path
    and, with ``local_smoothing``, the noise) is fixed per sample and draw, not per batch.

    ``expected_value`` is the mean model output over the background, ``(K,)`` as in DeepExplainer.
    """

    def __init__(
        self, model: NativeModel, data: InputData, batch_size: int = 50, local_smoothing: float = 0
    ) -> None:
        if not (math.isfinite(local_smoothing) and local_smoothing >= 0):
            raise ValueError(f"local_smoothing must be a finite number >= 0; got {local_smoothing!r}.")
        super().__init__(model, data, batch_size)
        self.local_smoothing = float(local_smoothing)
        self._background_mean: list[NativeTensor] = [
            self.adapter.ops.sum(b, 0) / float(b.shape[0]) for b in self.adapter.background
        ]

    def shap_values(
        self,
        X: InputData,
        nsamples: int = 200,
        ranked_output: int | None = None,
        output_rank_order: str = "max",
        rseed: int | None = None,
        return_variances: bool = False,
        ranked_outputs: int | None = None,
    ) -> ShapValues | tuple[Values, Values] | tuple[Values, Values, np.ndarray]:
        """SHAP values in shap's layout (see :mod:`deepshap.explainers._layout`).

        ``ranked_output=R`` (or ``ranked_outputs``, shap's other name) explains the R top outputs of each
        sample (by ``output_rank_order``) and returns ``(values, indexes)``; ``return_variances=True`` adds
        the variances of the estimates, in the same layout, after the values (``(values, variances)`` or
        ``(values, variances, indexes)``).
        """
        result = self._explain(
            X, nsamples, ranked_output, ranked_outputs, output_rank_order, rseed, return_variances
        )
        if not return_variances:
            return self._format(result.phi, result.index, result.ranked)
        values = self._values(result.phi, result.ranked)
        variances = self._values(result.variances, result.ranked)
        if result.ranked:
            return values, variances, result.index
        return values, variances

    def __call__(
        self,
        X: InputData,
        nsamples: int = 200,
        ranked_output: int | None = None,
        output_rank_order: str = "max",
        rseed: int | None = None,
        ranked_outputs: int | None = None,
    ) -> Explanation | list[Explanation]:
        """An :class:`~deepshap.Explanation` (a list, one per input, for several inputs).

        Values carry a trailing output axis; base_values are the mean background outputs ``(N, R)``.
        """
        start = time.perf_counter()
        result = self._explain(X, nsamples, ranked_output, ranked_outputs, output_rank_order, rseed, False)
        return self._explanation(result.phi, result.index, result.ranked, result.data, start)

    # the computation -------------------------------------------------------------------------------
    def _explain(
        self,
        X: InputData,
        nsamples: int,
        ranked_output: int | None,
        ranked_outputs: int | None,
        output_rank_order: str,
        rseed: int | None,
        want_variances: bool,
    ) -> _Result:
        nsamples = positive_int(nsamples, "nsamples")
        adapter = self.adapter
        xs = self._explained_inputs(X)
        index, ranked = self._output_index(xs, ranked_output, ranked_outputs, output_rank_order)
        sums = self._sums(xs, index, nsamples, np.random.default_rng(rseed), want_variances)
        phi: list[np.ndarray] = []
        variances: list[np.ndarray] = []  # empty unless wanted
        for t, x in enumerate(xs):
            mean_delta = adapter.to_numpy(x - self._background_mean[t])
            est, var = _estimate(sums, t, mean_delta, nsamples, want_variances)
            phi.append(est)
            if var is not None:
                variances.append(var)
        data = [adapter.to_numpy(x) for x in xs]
        phi = self._in_values_dtype(X, phi, data)
        if want_variances:
            variances = self._in_values_dtype(X, variances, data)
        return _Result(phi, variances, index, ranked, data)

    def _sums(
        self,
        xs: list[NativeTensor],
        index: np.ndarray,
        nsamples: int,
        rng: np.random.Generator,
        want_variances: bool,
    ) -> dict[str, list[np.ndarray]]:
        """Per-sample sums over the draws, computed natively batch by batch, returned as numpy.

        Keys (values: one array per input): "dg" sum d*g and "g" sum g, ``(N, R, *shape)``; "d" sum d,
        ``(N, *shape)``; with variances also "dg2" sum (d*g)^2, "dge" sum d*g*e and "e2" sum e^2, where
        e = d - (x - mean background).
        """
        adapter = self.adapter
        n, n_out = index.shape
        n_background = int(adapter.background[0].shape[0])
        picks = rng.integers(0, n_background, size=(n, nsamples))
        alphas = rng.random((n, nsamples), dtype=np.float32)
        # one seed per row and input (row seed + input index), distinct by construction
        first_seed = int(rng.integers(0, 2**31))
        noise_seeds = first_seed + len(xs) * np.arange(n * nsamples, dtype=np.int64).reshape(n, nsamples)
        features = sum(math.prod(int(d) for d in b.shape[1:]) for b in adapter.background)
        sums = _Sums(adapter.ops)
        for i0, i1, j0, j1 in _row_chunks(n, nsamples, self.batch_size):
            rows = np.repeat(np.arange(i0, i1), j1 - j0)
            draws = _Draws(
                picks[i0:i1, j0:j1].ravel(), alphas[i0:i1, j0:j1].ravel(), noise_seeds[i0:i1, j0:j1].ravel()
            )
            deltas, points, errors = self._interpolate(xs, rows, draws, want_variances)
            group = max(1, _MAX_GRADIENT_ELEMENTS // (len(rows) * features))
            per_group = [
                _gradient_sums(
                    adapter.ops,
                    deltas,
                    adapter.output_gradients(points, index[rows, r0 : r0 + group]),
                    errors,
                    i1 - i0,
                )
                for r0 in range(0, n_out, group)
            ]
            for key in per_group[0]:
                for t in range(len(xs)):
                    sums.add(key, t, adapter.ops.concat([part[key][t] for part in per_group], 1))
            for t in range(len(xs)):
                sums.add("d", t, _sample_sum(adapter.ops, deltas[t], i1 - i0))
                if errors is not None:
                    sums.add("e2", t, _sample_sum(adapter.ops, errors[t] * errors[t], i1 - i0))
            if j1 == nsamples:
                sums.end_block()
        return sums.result(adapter.to_numpy)

    def _interpolate(
        self, xs: list[NativeTensor], rows: np.ndarray, draws: _Draws, want_errors: bool
    ) -> tuple[list[NativeTensor], list[NativeTensor], list[NativeTensor] | None]:
        """Per input: d = x~ - x', the points x' + alpha d, and (if wanted) e = d - (x - mean background)."""
        ops = self.adapter.ops
        row_index, pick_index = ops.asarray(rows), ops.asarray(draws.picks)
        deltas, points, errors = [], [], []
        for t, (x, background) in enumerate(zip(xs, self.adapter.background, strict=True)):
            x_rows = ops.take(x, row_index)
            if want_errors:
                errors.append(x_rows - self._background_mean[t])
            if self.local_smoothing > 0:
                noise_shape = tuple(x_rows.shape[1:])
                x_rows = x_rows + ops.normal(noise_shape, self.local_smoothing, draws.noise_seeds + t)
            base = ops.take(background, pick_index)
            delta = x_rows - base
            alpha = ops.asarray(draws.alphas.reshape((-1,) + (1,) * (len(delta.shape) - 1)))
            deltas.append(delta)
            points.append(base + alpha * delta)
            if want_errors:
                errors[t] = delta - errors[t]
        return deltas, points, errors if want_errors else None


@dataclass
class _Result:
    phi: list[np.ndarray]
    variances: list[np.ndarray]
    index: np.ndarray
    ranked: bool
    data: list[np.ndarray]


@dataclass
class _Draws:
    picks: np.ndarray  # background row of each interpolated row
    alphas: np.ndarray  # position on the path of each row
    noise_seeds: np.ndarray  # seed of each row's smoothing noise


class _Sums:
    """Running per-sample sums: added to while a block of samples is drawn, joined at the end."""

    def __init__(self, ops: TensorOps) -> None:
        self.ops = ops
        self.current: dict[str, dict[int, NativeTensor]] = {}
        self.blocks: dict[str, list[dict[int, NativeTensor]]] = {}

    def add(self, key: str, t: int, value: NativeTensor) -> None:
        per_input = self.current.setdefault(key, {})
        per_input[t] = value if t not in per_input else per_input[t] + value

    def end_block(self) -> None:
        for key, per_input in self.current.items():
            self.blocks.setdefault(key, []).append(per_input)
        self.current = {}

    def result(self, to_numpy: Callable[[NativeTensor], np.ndarray]) -> dict[str, list[np.ndarray]]:
        return {
            key: [to_numpy(self.ops.concat([block[t] for block in blocks], 0)) for t in sorted(blocks[0])]
            for key, blocks in self.blocks.items()
        }


def _row_chunks(n: int, nsamples: int, batch_size: int) -> Iterator[tuple[int, int, int, int]]:
    """Batches ``(i0, i1, j0, j1)``: samples i0..i1, draws j0..j1; whole samples when nsamples fits."""
    if nsamples <= batch_size:
        per_batch = batch_size // nsamples
        for i0 in range(0, n, per_batch):
            yield i0, min(n, i0 + per_batch), 0, nsamples
        return
    for i in range(n):
        for j0 in range(0, nsamples, batch_size):
            yield i, i + 1, j0, min(nsamples, j0 + batch_size)


def _sample_sum(ops: TensorOps, values: NativeTensor, n_samples: int) -> NativeTensor:
    """Sum rows ``(n_samples * draws, ...)`` over the draws of each sample."""
    shape = tuple(int(d) for d in values.shape)
    return ops.sum(ops.reshape(values, (n_samples, shape[0] // n_samples, *shape[1:])), 1)


def _gradient_sums(
    ops: TensorOps,
    deltas: list[NativeTensor],
    grads: list[NativeTensor],
    errors: list[NativeTensor] | None,
    n_samples: int,
) -> dict[str, list[NativeTensor]]:
    """The gradient terms of one batch and one group of outputs, summed per sample (lists per input)."""
    out: dict[str, list[NativeTensor]] = {"dg": [], "g": []}
    for t, (delta, grad) in enumerate(zip(deltas, grads, strict=True)):
        term = delta[:, None] * grad
        out["dg"].append(_sample_sum(ops, term, n_samples))
        out["g"].append(_sample_sum(ops, grad, n_samples))
        if errors is not None:
            out.setdefault("dg2", []).append(_sample_sum(ops, term * term, n_samples))
            out.setdefault("dge", []).append(_sample_sum(ops, term * errors[t][:, None], n_samples))
    return out


def _estimate(
    sums: dict[str, list[np.ndarray]], t: int, mean_delta: np.ndarray, nsamples: int, want_variances: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """The control-variate estimate and its variance for input t, as ``(N, *shape, R)`` float64 arrays
    (the explainer gives them the dtype of the values it returns)."""
    n = float(nsamples)
    mean_g = sums["g"][t].astype(np.float64) / n
    error_mean = sums["d"][t].astype(np.float64) / n - mean_delta
    phi = sums["dg"][t] / n - error_mean[:, None] * mean_g
    variance = None
    if want_variances:
        squares = sums["dg2"][t] - 2 * mean_g * sums["dge"][t] + mean_g**2 * sums["e2"][t][:, None]
        spread = np.maximum(squares - n * phi**2, 0.0) / max(n - 1.0, 1.0)
        variance = np.moveaxis(spread / n, 1, -1)
    return np.moveaxis(phi, 1, -1), variance
