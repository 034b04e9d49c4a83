"""DeepSHAP for PyTorch: DeepLIFT/Shapley rules bound to operations by a ``TorchFunctionMode``.

How it works, for a chunk of n samples and m background rows:

1. Reference pass: the model runs on the m background rows inside the mode
   (:mod:`~deepshap.frameworks.pytorch.mode`). Each call of an operation with a nonlinear rule (see
   :mod:`~deepshap.frameworks.pytorch.registry`) whose arguments depend on the input records those
   arguments.
2. Pair pass: the model runs on the n*m (sample, background) pairs (sample rows repeated, row
   ``i*m + j`` pairs sample i with background row j). The k-th rule call takes the k-th recorded reference,
   broadcast over the samples (:mod:`~deepshap.frameworks.pytorch.pairing`), and returns its output
   through a rule whose backward pass applies the DeepLIFT/Shapley multipliers
   (:mod:`~deepshap.frameworks.pytorch.handlers`, :mod:`~deepshap.frameworks.pytorch.deep_rules`).
   Linear operations run untouched: their gradient is exact. Anything else that carries the input into
   a floating result raises, naming the operation.
3. One vector-Jacobian product per explained output over the pairs gives the multipliers; times
   ``x - b`` and averaged over the background rows, they are the SHAP values.

Interception is at the function level, so functional calls, modules reused several times and in-place
operations all get their rule, and nothing is stored on modules. Parameters are kept out of the graph
for the duration of a call (``requires_grad`` is restored afterwards), so "depends on the input" is
exactly "requires grad".
"""

from __future__ import annotations

import contextlib
import functools
import threading
import weakref
from collections.abc import Iterator

import numpy as np
import torch

from deepshap.errors import UnsupportedOperationError
from deepshap.frameworks.pytorch.mode import DeepMode, OperationsDiffer, Records
from deepshap.frameworks.pytorch.model import TorchModel, require_autograd
from deepshap.frameworks.pytorch.pairing import AmbiguousLayout
from deepshap.frameworks.pytorch.registry import MODULE_CALLS
from deepshap.rules.maths import plan_chunks

__all__ = ["UnsupportedOperationError", "deep_attributions"]


def deep_attributions(
    adapter: TorchModel, inputs: list[torch.Tensor], output_index: np.ndarray, batch_size: int
) -> list[np.ndarray]:
    """Mean over background rows of multipliers * (x - b): one ``(N, *shape, R)`` array per input."""
    require_autograd("DeepExplainer")
    n_bg = int(adapter.background[0].shape[0])
    n_chunk, m_chunk = plan_chunks(int(inputs[0].shape[0]), n_bg, batch_size)
    index = torch.as_tensor(np.asarray(output_index, dtype=np.int64), device=inputs[0].device)
    with _turn_of(adapter.module), _frozen_parameters(adapter), _registered_modules(adapter):
        try:
            phi = _attributions(adapter, inputs, index, m_chunk, n_chunk)
        except AmbiguousLayout:  # one sample per chunk: pair and reference shapes are then equal
            phi = _attributions(adapter, inputs, index, m_chunk, 1)
        except OperationsDiffer:
            if n_chunk == 1:
                raise
            # a model that loops over the rows of its batch calls more operations on more rows: one
            # sample per chunk gives both passes the same rows (data-dependent control flow fails again)
            phi = _attributions(adapter, inputs, index, m_chunk, 1)
    return [adapter.to_numpy(p / n_bg) for p in phi]


def _attributions(
    adapter: TorchModel, inputs: list[torch.Tensor], index: torch.Tensor, m_chunk: int, n_chunk: int
) -> list[torch.Tensor]:
    """Sums over background rows of multipliers * (x - b), chunks of n_chunk samples by m_chunk rows."""
    background = adapter.background
    n_samples, n_bg, n_out = int(inputs[0].shape[0]), int(background[0].shape[0]), int(index.shape[1])
    phi = [torch.zeros((n_samples, *x.shape[1:], n_out), dtype=x.dtype, device=x.device) for x in inputs]
    layout_probed = False
    for j0 in range(0, n_bg, m_chunk):
        refs = [b[j0 : j0 + m_chunk] for b in background]
        records = _reference_pass(adapter, refs)
        for i0 in range(0, n_samples, n_chunk):
            xs = [x[i0 : i0 + n_chunk] for x in inputs]
            parts, inner_split = _pair_pass(adapter, xs, refs, records, index[i0 : i0 + n_chunk])
            if inner_split and not layout_probed:
                _probe_layout(adapter, refs, records, len(xs[0]))
                layout_probed = True
            for k, part in enumerate(parts):
                phi[k][i0 : i0 + n_chunk] += part
    return phi


def _reference_pass(adapter: TorchModel, refs: list[torch.Tensor]) -> Records:
    """Run the background rows through the model, recording the arguments of every rule call.

    Arguments are recorded as views of the live tensors; when the model later changes one of them in
    place (``p[:, 4:] = p[:, 4:].sigmoid()``), the pass runs again keeping copies of them all.
    """

    def run(copy_records: bool) -> DeepMode:
        mode = DeepMode(records=[], n_samples=0, copy_records=copy_records)
        leaves = [r.detach().clone().requires_grad_(True) for r in refs]
        with torch.enable_grad(), mode:
            adapter.forward([leaf.clone() for leaf in leaves])
        return mode

    mode = run(copy_records=False)
    if mode.records_changed():
        mode = run(copy_records=True)
    return mode.records


def _pair_forward(
    adapter: TorchModel,
    xs: list[torch.Tensor],
    refs: list[torch.Tensor],
    records: Records,
) -> tuple[torch.Tensor, list[torch.Tensor], DeepMode]:
    """The model on n samples times m background rows (row i*m + j: sample i, row j), rules applied:
    the output, the input leaves and the mode (call within ``torch.enable_grad()``)."""
    n, m = int(xs[0].shape[0]), int(refs[0].shape[0])
    leaves = [x.detach().repeat_interleave(m, dim=0).requires_grad_(True) for x in xs]
    mode = DeepMode(records=records, n_samples=n, n_rows=m)
    with mode:
        out = adapter.forward([leaf.clone() for leaf in leaves])
    mode.check_consumed()
    return out, leaves, mode


def _pair_pass(
    adapter: TorchModel,
    xs: list[torch.Tensor],
    refs: list[torch.Tensor],
    records: Records,
    index: torch.Tensor,
) -> tuple[list[torch.Tensor], bool]:
    """Multipliers times differences, summed over the background rows, for n samples: ``(n, *shape, R)``;
    and whether a merged batch axis was split on the values of these samples (see :func:`_probe_layout`)."""
    n, m = int(xs[0].shape[0]), int(refs[0].shape[0])
    with torch.enable_grad():
        out, leaves, mode = _pair_forward(adapter, xs, refs, records)
        if not out.requires_grad:
            raise ValueError("the model output does not depend on its input; nothing to explain.")
        selected = out.gather(1, index.repeat_interleave(m, dim=0))
        n_out = int(index.shape[1])
        deltas = [
            leaf.detach() - r.repeat((n,) + (1,) * (r.dim() - 1))
            for leaf, r in zip(leaves, refs, strict=True)
        ]
        columns: list[list[torch.Tensor]] = [[] for _ in leaves]
        for col in range(n_out):
            grads = torch.autograd.grad(
                selected[:, col].sum(), leaves, retain_graph=col < n_out - 1, allow_unused=True
            )
            # The rules reuse their gradient buffers in the next backward pass: use g before it.
            for k, (g, delta) in enumerate(zip(grads, deltas, strict=True)):
                contrib = torch.zeros_like(delta) if g is None else g * delta
                columns[k].append(contrib.reshape(n, m, *delta.shape[1:]).sum(1))
    return [torch.stack(cols, dim=-1) for cols in columns], mode.inner_split


def _probe_layout(adapter: TorchModel, refs: list[torch.Tensor], records: Records, n: int) -> None:
    """Check the split of merged batch axes again on made-up samples (background rows plus noise).

    Where the batch is merged with an inner factor ((batch * tokens, ...)), the split is checked on the
    values: the sample side must repeat over the background rows. Samples that are equal to each other or
    constant along the tokens can pass a wrong split; generic values cannot, and the layout belongs to
    the model, not to the data. Raises :class:`AmbiguousLayout` where the split does not hold.
    """
    generator = torch.Generator(device=refs[0].device).manual_seed(0)
    xs = []
    for ref in refs:
        rows = ref[torch.arange(n, device=ref.device) % len(ref)]
        scale = ref.std(0, correction=0) + 0.1 * ref.abs().mean() + 1e-3
        noise = torch.randn(rows.shape, generator=generator, device=ref.device, dtype=ref.dtype)
        xs.append(rows + noise * scale)
    with torch.enable_grad():  # the rules follow the input through requires_grad; no backward pass
        _pair_forward(adapter, xs, refs, records)


#: A lock per model being explained (see :func:`_turn_of`), and the lock that guards the table.
_MODEL_LOCKS: weakref.WeakKeyDictionary[torch.nn.Module, threading.RLock] = weakref.WeakKeyDictionary()
_TABLE_LOCK = threading.Lock()


def _turn_of(module: torch.nn.Module) -> threading.RLock:
    """The lock of ``module``: an explanation changes the model for its duration (parameters out of the
    graph, registered modules' forward routed), so explanations of one model in several threads take
    turns; explanations of different models still run side by side."""
    with _TABLE_LOCK:
        lock = _MODEL_LOCKS.get(module)
        if lock is None:
            lock = _MODEL_LOCKS[module] = threading.RLock()
        return lock


@contextlib.contextmanager
def _frozen_parameters(adapter: TorchModel) -> Iterator[None]:
    """Parameters out of the graph for the duration of the block (``requires_grad`` restored after)."""
    params = [p for p in adapter.module.parameters() if p.requires_grad]
    try:
        for p in params:
            p.requires_grad_(False)
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


@contextlib.contextmanager
def _registered_modules(adapter: TorchModel) -> Iterator[None]:
    """The modules whose class was given a rule (:func:`deepshap.rules.register`) called through the
    function the registry knows them by, for the duration of the block."""
    patched = []
    if MODULE_CALLS:
        for sub in adapter.module.modules():
            call = MODULE_CALLS.get(type(sub))
            if call is not None and "forward" not in vars(sub):
                sub.forward = functools.partial(call, sub)
                patched.append(sub)
    try:
        yield
    finally:
        for sub in patched:
            del sub.forward
