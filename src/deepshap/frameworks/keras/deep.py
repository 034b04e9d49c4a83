"""DeepExplainer backend for Keras 3 / tf.keras on TensorFlow: DeepLIFT/Shapley rules at the op level.

One ``tf.function`` per adapter and number of explained outputs, traced once for any chunk size, does
the whole work for a chunk of (sample, background) pairs:

1. the pairs are laid out sample-major: every input row repeated once per background row, and the
   background rows tiled once per input row;
2. the model runs on the tiled references, then on the repeated inputs with the rule overrides of
   :mod:`deepshap.frameworks.keras.deep_rules` (ops paired between the two calls, unsupported ops
   rejected before anything runs);
3. one ``tf.gradients`` per explained output over the input call gives the DeepLIFT multipliers;
   multiplied by ``x - reference`` and summed over the chunk's background rows in float64 (the values
   come back in float64; the explainer gives them the dtype shap would). At most
   :data:`OUTPUTS_PER_TRACE` outputs share one traced function; more run in groups.

The Python loop runs over chunks only; the sum over chunks stays on tf tensors, and numpy appears once,
at the end. Memory is bounded by ``batch_size`` pairs.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from deepshap.arrays import to_numpy
from deepshap.errors import UnsupportedOperationError
from deepshap.frameworks.keras.deep_rules import RuleSession
from deepshap.frameworks.keras.model import KerasModel
from deepshap.rules.maths import plan_chunks

__all__ = ["UnsupportedOperationError", "deep_attributions"]

#: Explained outputs per traced function: more outputs run in groups (one forward pass per group), which
#: bounds the graph size, the tracing time and the memory held by concurrent VJPs (1000 ImageNet classes).
OUTPUTS_PER_TRACE = 10

#: ``(xs, refs, rows) -> per input, sums over refs of multiplier * delta``: a traced :func:`_attribute`.
Attribute = Callable[[list[tf.Tensor], list[tf.Tensor], tf.Tensor], list[tf.Tensor]]

_TRACED: weakref.WeakKeyDictionary[KerasModel, dict[int, Attribute]] = weakref.WeakKeyDictionary()


def deep_attributions(
    adapter: KerasModel, inputs: list[tf.Tensor], output_index: np.ndarray, batch_size: int
) -> list[np.ndarray]:
    """DeepSHAP values: per input ``(N, *shape, R)`` float64, the mean over the background of multipliers
    * delta.

    ``inputs`` are the adapter's tensors at the explained level (N rows), ``output_index`` an ``(N, R)``
    integer array naming the outputs explained for each sample, ``batch_size`` the number of (sample,
    background) pairs per chunk.
    """
    index = np.asarray(output_index, dtype=np.int64)
    n_samples = int(inputs[0].shape[0])
    if index.ndim != 2 or index.shape[0] != n_samples:
        raise ValueError(f"output_index must have shape ({n_samples}, R); got {index.shape}.")
    background = adapter.background
    n_background = int(background[0].shape[0])
    per_sample, per_background = plan_chunks(n_samples, n_background, batch_size)
    chunks: list[list[tf.Tensor]] = []
    for s in range(0, n_samples, per_sample):
        xs = [t[s : s + per_sample] for t in inputs]
        groups = []
        for c in range(0, index.shape[1], OUTPUTS_PER_TRACE):
            rows = tf.constant(index[s : s + per_sample, c : c + OUTPUTS_PER_TRACE])
            attribute = _traced(adapter, int(rows.shape[1]))
            total: list[tf.Tensor] = attribute(xs, [t[:per_background] for t in background], rows)
            for b in range(per_background, n_background, per_background):
                part = attribute(xs, [t[b : b + per_background] for t in background], rows)
                total = [u + v for u, v in zip(total, part, strict=True)]
            groups.append(total)
        chunks.append([tf.concat([g[i] for g in groups], axis=-1) for i in range(len(inputs))])
    scale = 1.0 / n_background
    return [to_numpy(tf.concat([chunk[i] for chunk in chunks], axis=0)) * scale for i in range(len(inputs))]


def _traced(adapter: KerasModel, n_explained: int) -> Attribute:
    """The traced attribution function of ``adapter`` for R explained outputs (built once, then reused).

    The function holds the adapter through a weak reference, so the cache does not keep it alive.
    """
    per_adapter = _TRACED.setdefault(adapter, {})
    if n_explained not in per_adapter:
        specs = [tf.TensorSpec([None, *t.shape[1:]], t.dtype) for t in adapter.background]
        signature = [specs, specs, tf.TensorSpec([None, n_explained], tf.int64)]
        owner = weakref.ref(adapter)
        # a partial, so that TensorFlow counts each adapter's traces apart (it groups functions by their
        # code, and would warn of "retracing" after five explainers)
        per_adapter[n_explained] = tf.function(
            functools.partial(_attribute_owned, owner),
            input_signature=signature,
            autograph=False,
        )
    return per_adapter[n_explained]


def _attribute_owned(
    owner: weakref.ReferenceType[KerasModel], xs: list[tf.Tensor], refs: list[tf.Tensor], rows: tf.Tensor
) -> list[tf.Tensor]:
    """:func:`_attribute` for the adapter behind the weak reference ``owner``."""
    adapter = owner()
    if adapter is None:
        raise RuntimeError("the explainer of this traced function no longer exists.")
    return _attribute(adapter, xs, refs, rows)


def _attribute(
    adapter: KerasModel, xs: list[tf.Tensor], refs: list[tf.Tensor], rows: tf.Tensor
) -> list[tf.Tensor]:
    """Graph body: per input ``(n, *shape, R)`` sums over this chunk's references of multiplier * delta."""
    n_x = tf.shape(xs[0])[0]
    n_ref = tf.shape(refs[0])[0]
    x_pairs = [tf.repeat(x, n_ref, axis=0) for x in xs]
    ref_pairs = [tf.tile(r, tf.concat([[n_x], tf.ones([r.shape.rank - 1], tf.int32)], 0)) for r in refs]
    session = RuleSession(tf.compat.v1.get_default_graph())
    with session.active():
        out = session.trace_pair(adapter.forward, x_pairs, ref_pairs)
        pair_rows = tf.repeat(rows, n_ref, axis=0)
        n_outputs = adapter.n_outputs
        per_output = []
        for r in range(rows.shape[1]):
            seed = tf.one_hot(pair_rows[:, r], n_outputs, dtype=out.dtype)
            per_output.append(tf.gradients(out, x_pairs, grad_ys=seed))
    result = []
    for i, (x, ref) in enumerate(zip(x_pairs, ref_pairs, strict=True)):
        grads = [g[i] if g[i] is not None else tf.zeros_like(x) for g in per_output]
        phi = tf.stack(grads, axis=-1) * tf.expand_dims(x - ref, -1)
        phi = tf.reshape(phi, tf.concat([[n_x, n_ref], tf.shape(phi)[1:]], 0))
        result.append(tf.reduce_sum(tf.cast(phi, tf.float64), axis=1))  # the sum over references
    return result
