"""Which model outputs the gradient-based explainers explain (``ranked_output``) and their names."""

from __future__ import annotations

from collections.abc import Sequence

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


def output_names_for(output_index: np.ndarray, output_names: Sequence[str] | None) -> np.ndarray | None:
    """Per-sample names ``(N, R)`` of the explained outputs, or None when the model's outputs are unnamed."""
    if output_names is None:
        return None
    names = np.asarray(list(output_names), dtype=object)
    return names[np.asarray(output_index)]
