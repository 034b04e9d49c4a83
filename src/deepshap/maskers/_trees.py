"""Binary partition trees over the pixels of an image, for Owen values.

A tree's nodes are regions of pixels (channels always stay together). Node ids follow scipy's linkage
convention: leaves ``0..L-1``, internal nodes ``L..2L-2`` with every child id below its parent's, the root
last. A node is a rectangle (axis tree) or a contiguous run of ``pixel_order`` (superpixel tree), so any
node is painted into a mask or written into an attribution array without per-node pixel lists.

Two trees:

* :func:`axis_tree`: shap's axis-aligned halving (largest box first, split along its longest side), one leaf
  per pixel. It reproduces the pixel sets of shap's ``maskers.Image`` tree node for node (shap's tree maps
  its boxes to point-reflected pixels, so an odd side's larger half is the part nearer the origin),
  which is what makes deepshap's values agree with shap's for the same budget.
* :func:`superpixel_tree`: SLIC superpixels merged bottom-up, adjacent segments of most similar colour
  first (Ward's criterion in Lab space), one leaf per superpixel.
"""

from __future__ import annotations

import functools
import heapq
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

#: A numpy index of a node's pixels in an ``(H, W, ...)`` array: two slices for a box, else the rows and
#: columns of its pixels.
PixelIndex = tuple[slice, slice] | tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True, eq=False)
class PartitionTree:
    """A binary tree of pixel regions over an ``(H, W)`` image.

    ``left``/``right`` give the children of each node (-1 for leaves), ``size`` its number of pixels,
    and either ``boxes`` ``(y0, y1, x0, x1)`` per node when every node is a rectangle, or ``start``, the
    offset of the node's run in ``pixel_order`` (the flat pixel indices ordered so that each node's
    pixels are contiguous).
    """

    image_shape: tuple[int, int]
    left: np.ndarray
    right: np.ndarray
    size: np.ndarray
    start: np.ndarray | None = None
    pixel_order: np.ndarray | None = None
    boxes: np.ndarray | None = None

    @functools.cached_property
    def area(self) -> list[float]:
        """Each node's share of the image, as Python floats (cheap to sum in per-mask bookkeeping)."""
        return (self.size / self.size[self.root]).tolist()

    @property
    def n_leaves(self) -> int:
        return (len(self.left) + 1) // 2

    @property
    def root(self) -> int:
        return len(self.left) - 1

    def is_leaf(self, node: int) -> bool:
        return self.left[node] < 0

    @functools.cached_property
    def children(self) -> list[tuple[int, int] | None]:
        """Per node, its ``(left, right)`` children as Python ints, or None for a leaf (for hot loops)."""
        pairs = zip(self.left.tolist(), self.right.tolist(), strict=True)
        return [None if left < 0 else (left, right) for left, right in pairs]

    @functools.cached_property
    def regions(self) -> Mapping[int, PixelIndex]:
        """Per node, a numpy index of its pixels in an ``(H, W, ...)`` array: two slices for a box, else
        row and column arrays. Kept once made (indexing is the hot path of building masked images); a box
        tree makes each one on first use, as most of its many nodes are never used."""
        if self.boxes is not None:
            return _BoxRegions(self.boxes)
        if self.start is None or self.pixel_order is None:
            raise ValueError("a PartitionTree needs either boxes or both start and pixel_order.")
        width = self.image_shape[1]
        regions: dict[int, PixelIndex] = {}
        for node in range(len(self.left)):
            begin = self.start[node]
            rows, columns = np.divmod(self.pixel_order[begin : begin + self.size[node]], width)
            regions[node] = (rows, columns)
        return regions

    def paint(self, flat_mask: np.ndarray, node: int) -> None:
        """Set the pixels of ``node`` to True in a flat ``(H*W,)`` boolean mask."""
        flat_mask.reshape(self.image_shape)[self.regions[node]] = True

    def masks(self, kept: list[list[int]]) -> np.ndarray:
        """Boolean masks ``(B, H, W)``, True on the pixels of each list of kept nodes."""
        out = np.zeros((len(kept), *self.image_shape), dtype=bool)
        index = self.regions
        for mask, nodes in zip(out, kept, strict=True):
            for node in nodes:
                mask[index[node]] = True
        return out

    def copy(self, dst: np.ndarray, src: np.ndarray, node: int) -> None:
        """Copy the pixels of ``node`` from ``src`` to ``dst``, both ``(H, W, C)``."""
        index = self.regions[node]
        dst[index] = src[index]

    def fill(self, per_pixel: np.ndarray, node: int, value: np.ndarray) -> None:
        """Write ``value`` to every pixel of ``node`` in ``per_pixel``, an ``(H, W, ...)`` array."""
        per_pixel[self.regions[node]] = value

    def clustering(self) -> np.ndarray:
        """The tree as a scipy linkage matrix ``(L-1, 4)``: children, a height (the node's pixel count)
        and the number of leaves under the node (pixels in the axis tree, superpixels in the other).

        Built once per tree and returned read-only (an image's explanation stacks it with the others).
        """
        return self._linkage

    @functools.cached_property
    def _linkage(self) -> np.ndarray:
        internal = np.arange(self.n_leaves, len(self.left))
        if self.n_leaves == self.size[self.root]:  # every leaf is one pixel
            leaves = self.size
        else:
            leaves = np.ones(len(self.left), dtype=np.int64)
            for node in internal.tolist():  # children come before their parent, as scipy requires
                leaves[node] = leaves[self.left[node]] + leaves[self.right[node]]
        columns = [self.left[internal], self.right[internal], self.size[internal], leaves[internal]]
        linkage = np.column_stack(columns).astype(np.float64)
        linkage.setflags(write=False)
        return linkage


class _BoxRegions(dict[int, tuple[slice, slice]]):
    """Node -> ``(rows, columns)`` slices of its box, made on first use."""

    def __init__(self, boxes: np.ndarray) -> None:
        super().__init__()
        self.boxes = boxes

    def __missing__(self, node: int) -> tuple[slice, slice]:
        y0, y1, x0, x1 = self.boxes[node].tolist()
        region = self[node] = (slice(y0, y1), slice(x0, x1))
        return region


def _contiguous_runs(
    left: np.ndarray, right: np.ndarray, leaf_pixels: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Order pixels by a depth-first walk; return ``(pixel_order, start, size)`` per node."""
    n_nodes = len(left)
    start = np.zeros(n_nodes, dtype=np.int64)
    size = np.zeros(n_nodes, dtype=np.int64)
    runs: list[np.ndarray] = []
    offset = 0
    stack: list[tuple[int, bool]] = [(n_nodes - 1, False)]
    while stack:
        node, done = stack.pop()
        if done:
            size[node] = offset - start[node]
            continue
        start[node] = offset
        if left[node] < 0:
            runs.append(leaf_pixels[node])
            offset += len(leaf_pixels[node])
            size[node] = len(leaf_pixels[node])
            continue
        stack.append((node, True))
        stack.append((int(right[node]), False))
        stack.append((int(left[node]), False))
    return np.concatenate(runs).astype(np.int64), start, size


@functools.lru_cache(maxsize=8)
def axis_tree(height: int, width: int) -> PartitionTree:
    """shap's axis-aligned halving tree over an ``height x width`` image, one leaf per pixel.

    Boxes are split along rows when at least as tall as wide, else along columns; an odd side gives its
    larger half to the part nearer the origin (shap's reflected layout). Built one level at a time.
    Leaves are numbered by pixel (``y * width + x``), internal nodes in reverse breadth-first order.
    """
    n_leaves = height * width
    n_nodes = 2 * n_leaves - 1
    level_boxes = [np.array([[0, height, 0, width]], dtype=np.int64)]
    level_children = []
    while True:
        boxes = level_boxes[-1]
        tall, wide = boxes[:, 1] - boxes[:, 0], boxes[:, 3] - boxes[:, 2]
        split = (tall > 1) | (wide > 1)
        if not split.any():
            break
        parents = boxes[split]
        rows = (tall >= wide)[split]
        first, second = parents.copy(), parents.copy()
        row_cut = parents[:, 1] - tall[split] // 2
        col_cut = parents[:, 3] - wide[split] // 2
        first[rows, 1] = second[rows, 0] = row_cut[rows]
        first[~rows, 3] = second[~rows, 2] = col_cut[~rows]
        level_children.append(np.flatnonzero(split))
        level_boxes.append(np.stack([first, second], axis=1).reshape(-1, 4))
    # number the nodes: leaves by pixel, internal nodes from the root (last id) downwards
    ids = []
    next_internal = n_nodes - 1
    for boxes in level_boxes:
        leaf = (boxes[:, 1] - boxes[:, 0] == 1) & (boxes[:, 3] - boxes[:, 2] == 1)
        node_ids = boxes[:, 0] * width + boxes[:, 2]
        n_internal = int((~leaf).sum())
        node_ids[~leaf] = next_internal - np.arange(n_internal)
        next_internal -= n_internal
        ids.append(node_ids)
    left = np.full(n_nodes, -1, dtype=np.int64)
    right = np.full(n_nodes, -1, dtype=np.int64)
    all_boxes = np.zeros((n_nodes, 4), dtype=np.int64)
    for depth, boxes in enumerate(level_boxes):
        all_boxes[ids[depth]] = boxes
        if depth < len(level_children):
            parents = ids[depth][level_children[depth]]
            left[parents] = ids[depth + 1][0::2]
            right[parents] = ids[depth + 1][1::2]
    size = (all_boxes[:, 1] - all_boxes[:, 0]) * (all_boxes[:, 3] - all_boxes[:, 2])
    return PartitionTree((height, width), left, right, size, boxes=all_boxes)


def superpixel_tree(image: np.ndarray, n_segments: int = 100, compactness: float = 10.0) -> PartitionTree:
    """SLIC superpixels of ``image`` (H, W, C) merged hierarchically by colour similarity.

    Only adjacent regions merge; the pair with the smallest Ward cost (size-weighted squared distance of
    mean Lab colours) goes first, which keeps the tree balanced and groups regions of similar colour.
    SLIC smooths the image first (a Gaussian of 1 pixel): without it, pixel noise breaks the segments
    into fragments that its connectivity pass then merges into a handful of regions, or one.
    """
    from skimage.segmentation import slic

    unit = _unit_range(image)
    # `compactness` is on the scale of Lab colours (0..100), which SLIC makes of 3 channels only; any
    # other channel count stays in [0, 1], so its compactness is scaled to match, or the segments would
    # ignore the picture and form a grid
    if unit.shape[-1] != 3:
        compactness = compactness / 100.0
    labels = slic(
        unit, n_segments=n_segments, compactness=compactness, sigma=1.0, start_label=0, channel_axis=-1
    )
    labels = np.unique(labels, return_inverse=True)[1].reshape(labels.shape)
    if labels.max() == 0 and labels.size > 1:
        raise ValueError(
            f"SLIC found a single superpixel in this {image.shape[0]}x{image.shape[1]} image with "
            f"n_segments={n_segments} (a target, not a count), so every pixel would get the same value; "
            "ask for more segments (50 to 200 suit most photos) or use partition='axis'."
        )
    features = _colour_features(unit)
    return tree_from_segments(labels, features)


def _unit_range(image: np.ndarray) -> np.ndarray:
    """The image rescaled to [0, 1] per image (SLIC and Lab conversion expect that range)."""
    image = np.asarray(image, dtype=np.float64)
    low, high = float(image.min()), float(image.max())
    return (image - low) / (high - low) if high > low else np.zeros_like(image)


def _colour_features(unit: np.ndarray) -> np.ndarray:
    """Per-pixel colour features: Lab for RGB images, the raw channels otherwise."""
    if unit.shape[-1] == 3:
        from skimage.color import rgb2lab

        return rgb2lab(unit)
    return unit * 100.0


def tree_from_segments(labels: np.ndarray, features: np.ndarray) -> PartitionTree:
    """Merge the segments of ``labels`` (H, W, ints ``0..S-1``) bottom-up into a binary tree."""
    height, width = labels.shape
    flat = labels.ravel()
    n_leaves = int(flat.max()) + 1
    counts = np.bincount(flat, minlength=n_leaves).astype(np.float64)
    sums = np.stack(
        [
            np.bincount(flat, weights=features[..., c].ravel(), minlength=n_leaves)
            for c in range(features.shape[-1])
        ],
        axis=1,
    )
    n_nodes = 2 * n_leaves - 1
    left = np.full(n_nodes, -1, dtype=np.int64)
    right = np.full(n_nodes, -1, dtype=np.int64)
    count = np.concatenate([counts, np.zeros(n_leaves - 1)])
    mean = np.concatenate([sums / counts[:, None], np.zeros((n_leaves - 1, sums.shape[1]))])
    neighbours: dict[int, set[int]] = {i: set() for i in range(n_leaves)}
    for a, b in _adjacent_pairs(labels):
        neighbours[a].add(b)
        neighbours[b].add(a)

    def cost(a: int, b: int) -> float:
        diff = mean[a] - mean[b]
        return float(count[a] * count[b] / (count[a] + count[b]) * (diff @ diff))

    heap = [(cost(a, b), a, b) for a in neighbours for b in neighbours[a] if a < b]
    heapq.heapify(heap)
    alive = np.zeros(n_nodes, dtype=bool)
    alive[:n_leaves] = True
    for node in range(n_leaves, n_nodes):
        while True:
            _, a, b = heapq.heappop(heap)
            if alive[a] and alive[b]:
                break
        left[node], right[node] = a, b
        alive[[a, b]] = False
        alive[node] = True
        count[node] = count[a] + count[b]
        mean[node] = (count[a] * mean[a] + count[b] * mean[b]) / count[node]
        merged = (neighbours.pop(a) | neighbours.pop(b)) - {a, b}
        neighbours[node] = merged
        for other in merged:
            neighbours[other] -= {a, b}
            neighbours[other].add(node)
            heapq.heappush(heap, (cost(node, other), other, node))
    order = np.argsort(flat, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(counts.astype(np.int64))])
    leaf_pixels = [order[bounds[i] : bounds[i + 1]] for i in range(n_leaves)]
    pixel_order, start, size = _contiguous_runs(left, right, leaf_pixels)
    return PartitionTree((height, width), left, right, size, start=start, pixel_order=pixel_order)


def _adjacent_pairs(labels: np.ndarray) -> set[tuple[int, int]]:
    """Pairs of distinct labels that touch horizontally or vertically."""
    pairs = np.concatenate(
        [
            np.stack([labels[:, :-1].ravel(), labels[:, 1:].ravel()], axis=1),
            np.stack([labels[:-1, :].ravel(), labels[1:, :].ravel()], axis=1),
        ]
    )
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    pairs = np.unique(np.sort(pairs, axis=1), axis=0)
    return {(int(a), int(b)) for a, b in pairs}
