"""Output handling shared by the gradient-based explainers.

Explainers compute attributions in one canonical layout: a list with one array per model input, each
shaped ``(N, *input_shape, R)`` where the trailing axis runs over the R explained outputs. This module
chooses which outputs to explain (``ranked_output``) and turns the canonical layout into the return formats
that shap's users rely on (the seeds print them), or into an :class:`~deepshap.Explanation`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

RANK_ORDERS = ("max", "min", "max_abs")


def resolve_ranked_output(ranked_output: int | None, ranked_outputs: int | None) -> int | None:
    """Accept both spellings (``ranked_output`` is the documented one, shap renamed it back and forth)."""
    if ranked_output is not None and ranked_outputs is not None and ranked_output != ranked_outputs:
        raise TypeError("Pass either ranked_output or ranked_outputs, not both with different values.")
    return ranked_output if ranked_output is not None else ranked_outputs


def select_outputs(
    model_output: np.ndarray, ranked_output: int | None = None, output_rank_order: str = "max"
) -> np.ndarray:
    """Return an ``(N, R)`` int64 array: row i lists the outputs explained for sample i.

    Without ``ranked_output`` every output is explained in its natural order. With ``ranked_output=R`` the
    R outputs ranked first by ``output_rank_order`` ("max": largest first, "min": smallest first,
    "max_abs": largest magnitude first) are explained, ties broken by the lower index.
    """
    model_output = np.asarray(model_output)
    if model_output.ndim != 2:
        raise ValueError(f"Model outputs must be (N, K); got shape {model_output.shape}.")
    n_samples, n_outputs = model_output.shape
    if ranked_output is None:
        return np.tile(np.arange(n_outputs, dtype=np.int64), (n_samples, 1))
    if isinstance(ranked_output, bool) or not isinstance(ranked_output, int | np.integer):
        raise TypeError(f"ranked_output must be a positive integer; got {ranked_output!r}.")
    if not 1 <= ranked_output <= n_outputs:
        raise ValueError(
            f"ranked_output must be between 1 and the number of outputs ({n_outputs}); got {ranked_output}."
        )
    if output_rank_order == "max":
        keys = -model_output
    elif output_rank_order == "min":
        keys = model_output
    elif output_rank_order == "max_abs":
        keys = -np.abs(model_output)
    else:
        raise ValueError(f"output_rank_order must be one of {RANK_ORDERS}; got {output_rank_order!r}.")
    return np.argsort(keys, axis=1, kind="stable")[:, :ranked_output].astype(np.int64)


def format_shap_values(
    phi: Sequence[np.ndarray],
    single_output: bool,
    multi_input: bool,
    output_index: np.ndarray | None = None,
    ranked: bool = False,
) -> Any:
    """Turn canonical attributions into shap's legacy return formats.

    One output gives an array (a list per input for several inputs); k outputs give a list of k such
    entries; ``ranked=True`` gives ``(values, output_index)`` with values a list over the ranked positions.
    """
    n_explained = phi[0].shape[-1]
    per_output = []
    for j in range(n_explained):
        per_input = [np.ascontiguousarray(p[..., j]) for p in phi]
        per_output.append(per_input if multi_input else per_input[0])
    if ranked:
        if output_index is None:
            raise ValueError("ranked formats need the (N, R) output_index array.")
        return per_output, np.asarray(output_index, dtype=np.int64)
    if single_output:
        return per_output[0]
    return per_output


def output_names_for(output_index: np.ndarray, output_names: Sequence[str] | None) -> np.ndarray | None:
    """Per-sample names ``(N, R)`` of the explained outputs, or None when the model's outputs are unnamed."""
    if output_names is None:
        return None
    names = np.asarray(list(output_names), dtype=object)
    return names[np.asarray(output_index)]


def build_explanation(
    phi: Sequence[np.ndarray],
    base_values: np.ndarray,
    data: Sequence[np.ndarray],
    output_index: np.ndarray,
    output_names: Sequence[str] | None = None,
    single_output: bool = False,
    ranked: bool = False,
    compute_time: float | None = None,
) -> Any:
    """Wrap canonical attributions in Explanation objects (one per model input, a list for several).

    Values keep the trailing output axis ``(N, *input_shape, R)`` and base_values are ``(N, R)``; a
    single-output model explained without ranking drops that axis, like shap's scalar explanations.
    ``output_indexes`` records which model outputs each column explains when outputs were ranked.
    """
    from deepshap.explanation import Explanation

    base_values = np.asarray(base_values)
    names = output_names_for(output_index, output_names)
    drop_output_axis = single_output and not ranked
    explanations = []
    for values, inputs in zip(phi, data, strict=True):
        explanations.append(
            Explanation(
                values=values[..., 0] if drop_output_axis else values,
                base_values=base_values[:, 0] if drop_output_axis else base_values,
                data=np.asarray(inputs),
                output_names=None if names is None or drop_output_axis else names,
                output_indexes=np.asarray(output_index) if ranked else None,
                compute_time=compute_time,
            )
        )
    return explanations if len(explanations) > 1 else explanations[0]
