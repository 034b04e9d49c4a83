"""An Explanation whose every field is coded by the axes it follows, for the Explanation tests."""

from __future__ import annotations

import numpy as np

from deepshap.explanation import Explanation

N, F, K = 5, 4, 3
NAMES = ["tabby", "espresso", "crane"]


def coded_explanation() -> Explanation:
    """values[i, f, k] = 100 i + 10 f + k, and every field coded by the axes it follows."""
    i, f, k = np.meshgrid(np.arange(N), np.arange(F), np.arange(K), indexing="ij")
    values = (100 * i + 10 * f + k).astype(float)
    return Explanation(
        values,
        base_values=values[:, 0, :] - 1000,
        data=values[:, :, 0] + 0.5,
        display_data=values[:, :, 0].astype(int),
        instance_names=[f"img{r}" for r in range(N)],
        feature_names=[f"f{c}" for c in range(F)],
        output_names=NAMES,
        output_indexes=np.tile(np.arange(K), (N, 1)),
        lower_bounds=values - 1,
        upper_bounds=values + 1,
        error_std=values / 1000,
        main_effects=values + 0.25,
        hierarchical_values=np.arange(N * (2 * F - 1), dtype=float).reshape(N, 2 * F - 1),
        compute_time=1.5,
    )


def numpy_fields(e: Explanation) -> dict[str, np.ndarray]:
    return {
        "values": e.values,
        "base_values": e.base_values,
        "data": e.data,
        "lower_bounds": e.lower_bounds,
        "output_indexes": e.output_indexes,
    }
