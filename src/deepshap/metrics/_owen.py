"""Exact Owen values of regions on a binary partition tree (the values the Partition explainer computes).

In a binary hierarchy, a region's Owen value averages its marginal contribution over the 2^d ways of
including or leaving out, whole, the sibling subtree at each of its d ancestors' levels. Summed over a
region's pixels, the Owen values of the full pixel tree equal the region's Owen value on the tree cut
above it, so a Partition explanation summed per region can be checked exactly on a shallow cut.
"""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt

from deepshap._typing import InputData
from deepshap.metrics._game import MeasuredModel, ModelRunner, RegionGame
from deepshap.metrics._regions import Regions
from deepshap.metrics._truth import Background, _numpy_images, fill_rows, output_table

__all__ = ["owen_values"]

_MAX_COALITIONS = 1 << 16


def _ancestry(tree: dict[int, tuple[int, int]], n_regions: int) -> list[list[np.ndarray]]:
    """For each region, the sibling subtrees (as region masks) from its parent up to the root."""
    members: dict[int, np.ndarray] = {r: np.eye(n_regions, dtype=bool)[r] for r in range(n_regions)}
    parent: dict[int, int] = {}
    for node in sorted(tree):  # children before parents
        left, right = tree[node]
        members[node] = members[left] | members[right]
        parent[left] = parent[right] = node
    siblings = []
    for region in range(n_regions):
        chain, node = [], region
        while node in parent:
            left, right = tree[parent[node]]
            chain.append(members[right if node == left else left])
            node = parent[node]
        siblings.append(chain)
    return siblings


def owen_coalitions(regions: Regions) -> tuple[np.ndarray, list[tuple[int, np.ndarray, np.ndarray]]]:
    """Every coalition the exact Owen values need, and per region the rows of (with, without) pairs."""
    if regions.tree is None:
        raise ValueError("Owen values need a tree: make the regions with metrics.partition_cut(...).")
    m = regions.n_regions
    index: dict[bytes, int] = {}
    rows: list[np.ndarray] = []

    def row(mask: np.ndarray) -> int:
        key = mask.tobytes()
        if key not in index:
            index[key] = len(rows)
            rows.append(mask)
        return index[key]

    plan = []
    for region, chain in enumerate(_ancestry(regions.tree, m)):
        with_rows, without_rows = [], []
        for flips in itertools.product((False, True), repeat=len(chain)):
            context = np.zeros(m, dtype=bool)
            for include, sibling in zip(flips, chain, strict=True):
                if include:
                    context |= sibling
            without_rows.append(row(context.copy()))
            context[region] = True
            with_rows.append(row(context))
        plan.append((region, np.array(with_rows), np.array(without_rows)))
        if len(rows) > _MAX_COALITIONS:
            raise ValueError(
                f"The tree is too deep for exact Owen values (over {_MAX_COALITIONS} coalitions); "
                "cut it higher."
            )
    return np.array(rows), plan


def owen_values(
    model: MeasuredModel,
    images: InputData,
    background: Background,
    regions: Regions,
    outputs: npt.ArrayLike | None = None,
    batch_size: int = 256,
    progress: bool = True,
) -> np.ndarray:
    """Exact Owen values ``(N, M, R)`` of the regions of ``partition_cut`` on their tree.

    ``background`` is the fill of hidden regions: rows, or a function of one image (for the Partition
    explainer with a blur masker, ``lambda x: masker(np.zeros(...), x)[0]``).
    """
    from tqdm.auto import tqdm

    images = _numpy_images(images)
    coalitions, plan = owen_coalitions(regions)
    runner = ModelRunner(model, images[:1] if callable(background) else background, batch_size)
    table = output_table(outputs, len(images), runner.n_outputs)
    result = np.zeros((len(images), regions.n_regions, table.shape[1]))
    with tqdm(
        total=len(images) * len(coalitions), desc="Owen values", unit="coalition", disable=not progress
    ) as bar:
        for i, (image, picked) in enumerate(zip(images, table, strict=True)):
            fills = fill_rows(runner, background, image)
            game = RegionGame(runner, runner.native(image[None])[0], fills, regions, picked)
            bar.total = len(images) * len(coalitions) * game.n_background
            values = game.values(coalitions, bar)
            for region, with_rows, without_rows in plan:
                result[i, region] = (values[with_rows] - values[without_rows]).mean(axis=0)
    return result
