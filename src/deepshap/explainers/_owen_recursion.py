"""The Owen recursion of the Partition explainer: values on the nodes of a partition tree, then pixels.

:func:`owen_values` expands the nodes of the tree in the order of a priority queue (largest effect first)
until the budget of model evaluations is spent, crediting each node the interaction term of its two halves
and what is left on the queue; each masked image is a root path of the tree
(:data:`~deepshap.maskers._paths.Path`). :class:`ImageResult` pushes the node values down to the pixels
and gives the per-node values and the tree that the Explanation carries.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from deepshap.maskers._paths import Path
from deepshap.maskers._trees import PartitionTree

Piece = tuple[int, bool]
"""A region of a root path: a tree node and whether its pixels are kept."""

QueueItem = tuple[float, int, int, float, np.ndarray, np.ndarray, Path, Piece | None]
"""A node waiting on the queue: ``(priority, order, node, weight, f_without, f_with, around, piece)``."""

Credited = list[tuple[list[int], np.ndarray]]
"""Blocks of ``(nodes, their amounts (n, k))`` credited to nodes, summed per node at the end."""


class ImageSummary(NamedTuple):
    """What the Explanation keeps of one image besides its pixel values."""

    base: np.ndarray  # (k,) the explained outputs of the fully masked image
    output_index: np.ndarray  # (k,) the model outputs explained
    hierarchical: object  # a scipy.sparse csr_array (nodes, k): the value left on each tree node
    clustering: np.ndarray  # the tree as a scipy linkage matrix


@dataclass
class ImageResult:
    """The Owen recursion's node values for one image, turned into per-pixel values on demand."""

    tree: PartitionTree
    nodes: np.ndarray  # the nodes holding a value, ascending
    node_values: np.ndarray  # (len(nodes), k)
    expanded: set[int]
    base: np.ndarray
    output_index: np.ndarray
    dtype: np.dtype

    def write_values(self, out: np.ndarray, channels: int) -> None:
        """Push each node's value down to its pixels (split by size, like shap) into ``out`` (H, W, C, k)."""
        tree = self.tree
        area, children, expanded = tree.area, tree.children, self.expanded
        per_value = 1.0 / (int(tree.size[tree.root]) * channels)  # a whole region's credit -> one value
        value_of = dict(zip(self.nodes.tolist(), self.node_values, strict=True))
        stack = [(tree.root, np.zeros(len(self.output_index)))]
        while stack:
            node, credit = stack.pop()
            if node in value_of:
                credit = credit + value_of[node]
            pair = children[node] if node in expanded else None
            if pair is None:
                tree.fill(out, node, credit * (per_value / area[node]))
            else:
                left, right = pair
                share = credit / area[node]
                stack.append((left, share * area[left]))
                stack.append((right, share * area[right]))

    def summary(self) -> ImageSummary:
        """The base values, outputs, node values (sparse) and tree of this image."""
        from scipy.sparse import csr_array

        n_nodes, k = len(self.tree.left), len(self.output_index)
        nodes = self.nodes
        hierarchical = csr_array(
            (self.node_values.ravel(), (np.repeat(nodes, k), np.tile(np.arange(k), len(nodes)))),
            shape=(n_nodes, k),
        )
        return ImageSummary(self.base, self.output_index, hierarchical, self.tree.clustering())


def owen_values(
    evaluate: Callable[[list[Path]], np.ndarray],
    tree: PartitionTree,
    f00: np.ndarray,
    f11: np.ndarray,
    budget: int,
    batch_size: int,
    fixed_context: int | None = None,
) -> tuple[np.ndarray, np.ndarray, set[int]]:
    """Run the Owen recursion; return the nodes that hold a value (ascending), their values ``(n, k)``
    and the set of expanded nodes.

    ``evaluate(paths)`` maps B root paths of the tree (``(node, kept)`` regions tiling the image, see
    :data:`~deepshap.maskers._paths.Path`) to the outputs ``(B, k)`` of the images with the kept regions
    shown and the others masked; ``f00``/``f11`` are the outputs with no pixel / every pixel kept. At
    most ``budget`` (+1) masks are evaluated, in batches of about ``batch_size``; the batching decides
    which nodes are expanded together and so matches shap's for the same ``batch_size``.

    The queue holds ``(priority, order, node, weight, f_without, f_with, around, piece)``: the node's
    outputs without / with it in its context, and the path of regions around it (the siblings of its
    ancestors and its own, root first, each kept or not) that the context is made of, as its parent's
    path ``around`` and the ``piece`` its sibling adds (joined only for the nodes that get expanded).
    """
    credited: Credited = []
    expanded: set[int] = set()
    heap: list[QueueItem] = [(0.0, 0, tree.root, 1.0, f00, f11, (), None)]
    ahead: dict[Path, np.ndarray] = {}  # outputs of images evaluated before their batch (see _paths_ahead)
    order = 1
    n_evals = 0
    children = tree.children

    while heap:
        if n_evals >= budget:  # what is left on the queue stays on its node
            f_without = np.stack([item[4] for item in heap])
            f_with = np.stack([item[5] for item in heap])
            amounts = (f_with - f_without) * np.array([item[3] for item in heap])[:, None]
            credited.append(([item[2] for item in heap], amounts))
            break
        batch: list[QueueItem] = []
        pairs: list[tuple[int, int]] = []  # the children of each node of the batch
        outsides: list[Path] = []
        paths: list[Path] = []
        while heap and 2 * len(batch) < batch_size and n_evals + 2 * len(batch) < budget:
            item = heapq.heappop(heap)
            pair = children[item[2]]
            if pair is None:
                credited.append(([item[2]], ((item[5] - item[4]) * item[3])[None]))
                continue
            outside = item[6] if item[7] is None else (*item[6], item[7])
            batch.append(item)
            pairs.append(pair)
            outsides.append(outside)
            paths += _halves(outside, pair)
        if not batch:
            continue
        missing = [path for path in paths if path not in ahead] if ahead else paths
        if missing:
            contexts = (0, 1) if fixed_context is None else (fixed_context,)
            level = list(zip(pairs, outsides, strict=True))
            known = (
                _paths_ahead(level, children, contexts, n_evals + len(paths), budget, batch_size)
                if not heap
                else []
            )
            extra = known[: max(0, batch_size - len(missing))]
            evaluated = evaluate(missing + extra)
            ahead.update(zip(extra, evaluated[len(missing) :], strict=True))
            if missing is not paths:
                ahead.update(zip(missing, evaluated[: len(missing)], strict=True))
        if missing is paths:  # the usual case: nothing of this batch was evaluated ahead
            outputs = evaluated[: len(paths)]
        else:
            outputs = np.stack([ahead.pop(path) for path in paths])
        n_evals += len(paths)
        order = _expand(batch, pairs, outsides, outputs, fixed_context, heap, order, expanded, credited)
    return (*_sum_by_node(credited, len(f00)), expanded)


def _paths_ahead(
    level: list[tuple[tuple[int, int], Path]],
    children: list[tuple[int, int] | None],
    contexts: tuple[int, ...],
    n_evals: int,
    budget: int,
    batch_size: int,
) -> list[Path]:
    """The paths of the batches after this one that do not depend on its outputs, in batch order.

    When a batch empties the queue, the next batch is made of its nodes' children; when they all fit in
    it (and none is a leaf), which of them it takes no longer depends on their priorities, so their
    images are known before this batch is evaluated, and so on down while each level fits. Evaluating
    them with this batch spares the model the recursion's small first batches (2, 8, 32 images).
    ``level`` holds the ``(children, outside path)`` of this batch's nodes; ``n_evals`` counts this
    batch.
    """
    known: list[Path] = []
    while True:
        queued: list[tuple[tuple[int, int], Path]] = []  # (children, outside path) of the next batch
        for pair, outside in level:
            for context in contexts:
                for side in (0, 1):
                    grandchildren = children[pair[side]]
                    if grandchildren is None:
                        return known
                    queued.append((grandchildren, (*outside, (pair[1 - side], context == 1))))
        last = 2 * (len(queued) - 1)  # the batch takes every queued node iff it takes the last one
        if not queued or last >= batch_size or n_evals + last >= budget:
            return known
        for pair, outside in queued:
            known += _halves(outside, pair)
        n_evals += 2 * len(queued)
        level = queued


def _halves(outside: Path, pair: tuple[int, int]) -> tuple[Path, Path]:
    """The two images that expand a node in its context ``outside``: left half kept, then right."""
    left, right = pair
    return (*outside, (left, True), (right, False)), (*outside, (left, False), (right, True))


def _expand(
    batch: list[QueueItem],
    pairs: list[tuple[int, int]],
    outsides: list[Path],
    outputs: np.ndarray,
    fixed_context: int | None,
    heap: list[QueueItem],
    order: int,
    expanded: set[int],
    credited: Credited,
) -> int:
    """Use the outputs of a batch: interaction terms onto the nodes, children onto the queue.

    ``pairs`` holds the children of the batch's nodes, ``outsides`` the root paths of their contexts.

    Children go in the empty context (outputs without / with the child: f00 / f10 for the left one) and
    in the sibling's context (f01 / f11), weighted 1/2 each; a fixed context keeps one of the two at full
    weight, its interaction term staying on the node. The arithmetic runs on the whole batch at once.
    """
    f00 = np.stack([item[4] for item in batch])
    f11 = np.stack([item[5] for item in batch])
    f10, f01 = outputs[0::2], outputs[1::2]
    weight = np.array([item[3] for item in batch])
    child_weight = (weight / 2 if fixed_context is None else weight).tolist()
    if fixed_context is not None:
        sign = 1.0 if fixed_context == 0 else -1.0
        interaction = (f11 - f10 - f01 + f00) * (sign * weight)[:, None]
        credited.append(([item[2] for item in batch], interaction))
    contexts = (0, 1) if fixed_context is None else (fixed_context,)
    # per context: (without, with) for the left child, then for the right child
    before_after = {0: ((f00, f10), (f00, f01)), 1: ((f01, f11), (f10, f11))}
    # per (context, side): the children's priorities and their rows of outputs without / with them
    queued: list[tuple[int, int, list[float], list[np.ndarray], list[np.ndarray]]] = []
    for context in contexts:
        for side in (0, 1):
            without, with_ = before_after[context][side]
            priority = (-np.abs(with_ - without).max(axis=1) * child_weight).tolist()
            queued.append((context, side, priority, list(without), list(with_)))
    push = heapq.heappush
    for i, (item, pair, outside) in enumerate(zip(batch, pairs, outsides, strict=True)):
        expanded.add(item[2])
        weight_i = child_weight[i]
        for context, side, priority, rows_without, rows_with in queued:
            piece = (pair[1 - side], context == 1)
            push(
                heap,
                (priority[i], order, pair[side], weight_i, rows_without[i], rows_with[i], outside, piece),
            )
            order += 1
    return order


def _sum_by_node(credited: Credited, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Add up the amounts credited to each node (in the order credited): ``(nodes ascending, (n, k))``."""
    if not credited:
        return np.zeros(0, dtype=np.int64), np.zeros((0, k))
    nodes = np.concatenate([np.asarray(block_nodes, dtype=np.int64) for block_nodes, _ in credited])
    amounts = np.concatenate([block_amounts for _, block_amounts in credited])
    unique, position = np.unique(nodes, return_inverse=True)
    sums = np.zeros((len(unique), k))
    np.add.at(sums, position, amounts)
    return unique, sums
