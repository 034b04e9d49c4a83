"""Regions: groups of pixels that act as one player of the Shapley game (grid blocks, superpixels, or
the Partition explainer's tree cut at a depth).

A :class:`Regions` labels every value of one input sample (channels included) with its region, so an
attribution array of the sample's shape sums to one number per region and a keep-mask over regions
expands to a keep-mask over values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = ["Regions", "grid", "partition_cut", "pixels", "superpixels", "spatial_axes"]


@dataclass(frozen=True)
class Regions:
    """A label per value of one input sample: ``labels`` has the sample's shape, values in ``0..M-1``.

    ``tree`` (set by :func:`partition_cut`) is the top of a binary partition tree whose leaves are the
    regions: ``tree[node] = (left, right)`` for internal nodes numbered ``M..``, the root last.
    """

    labels: np.ndarray
    tree: dict[int, tuple[int, int]] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        labels = np.asarray(self.labels)
        if labels.dtype.kind not in "iu" or labels.size == 0:
            raise ValueError("Region labels must be a non-empty integer array (one label per input value).")
        present = np.unique(labels)
        if present[0] != 0 or present[-1] != len(present) - 1:
            raise ValueError("Region labels must be 0..M-1 with every region used; relabel them.")
        object.__setattr__(self, "labels", labels.astype(np.int64))

    @property
    def n_regions(self) -> int:
        return int(self.labels.max()) + 1

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.labels.shape)

    def sum_values(self, values: np.ndarray) -> np.ndarray:
        """Attributions ``(N, *sample_shape, R)`` summed per region: ``(N, M, R)``."""
        values = np.asarray(values, dtype=np.float64)
        n, r = values.shape[0], values.shape[-1]
        if values.shape[1:-1] != self.sample_shape:
            raise ValueError(
                f"Attributions of samples shaped {values.shape[1:-1]} do not match the regions' sample "
                f"shape {self.sample_shape}."
            )
        flat = values.reshape(n, -1, r)
        order = np.argsort(self.labels.ravel(), kind="stable")
        starts = np.searchsorted(self.labels.ravel()[order], np.arange(self.n_regions))
        return np.add.reduceat(flat[:, order], starts, axis=1)

    def value_masks(self, region_masks: np.ndarray) -> np.ndarray:
        """Keep-masks over regions ``(C, M)`` as float32 keep-masks over values ``(C, *sample_shape)``."""
        region_masks = np.asarray(region_masks)
        return region_masks[:, self.labels].astype(np.float32)

    def one_hot(self) -> np.ndarray:
        """``(M, P)`` float32 matrix: row m is 1 on the values of region m (P values per sample)."""
        flat = self.labels.ravel()
        matrix = np.zeros((self.n_regions, flat.size), dtype=np.float32)
        matrix[flat, np.arange(flat.size)] = 1.0
        return matrix


def spatial_axes(sample_shape: tuple[int, ...], channels: str | None = None) -> tuple[int, int, int | None]:
    """The (height axis, width axis, channel axis or None) of one image sample.

    ``channels`` is "last", "first" or None (guess: a 3-D shape whose first axis is 1, 3 or 4 and whose
    last is not is channels-first; otherwise channels-last; a 2-D shape has no channel axis).
    """
    if len(sample_shape) == 2:
        return 0, 1, None
    if len(sample_shape) != 3:
        raise ValueError(
            f"Regions need image samples shaped (H, W), (H, W, C) or (C, H, W); got {tuple(sample_shape)}."
        )
    if channels is None:
        channels = "first" if sample_shape[0] in (1, 3, 4) and sample_shape[2] not in (1, 3, 4) else "last"
    if channels == "first":
        return 1, 2, 0
    if channels == "last":
        return 0, 1, 2
    raise ValueError(f'channels must be "first", "last" or None; got {channels!r}.')


def _broadcast(spatial: np.ndarray, sample_shape: tuple[int, ...], channels: str | None) -> Regions:
    """Spatial labels ``(H, W)`` repeated over the channel axis of ``sample_shape``."""
    _, _, channel_axis = spatial_axes(sample_shape, channels)
    _, inverse = np.unique(spatial, return_inverse=True)
    spatial = inverse.reshape(spatial.shape)
    if channel_axis is None:
        return Regions(spatial)
    labels = np.broadcast_to(np.expand_dims(spatial, channel_axis), sample_shape)
    return Regions(np.ascontiguousarray(labels))


def _height_width(sample_shape: tuple[int, ...], channels: str | None) -> tuple[int, int]:
    h_axis, w_axis, _ = spatial_axes(sample_shape, channels)
    return int(sample_shape[h_axis]), int(sample_shape[w_axis])


def grid(sample_shape: tuple[int, ...], block: int | tuple[int, int], channels: str | None = None) -> Regions:
    """Square (or ``(bh, bw)``) blocks of pixels; the last row/column of blocks may be smaller."""
    bh, bw = (block, block) if isinstance(block, int | float | np.number) else tuple(block)
    if bh < 1 or bw < 1:
        raise ValueError(f"block must be at least 1 pixel; got {block}.")
    height, width = _height_width(tuple(sample_shape), channels)
    rows = np.arange(height) // bh
    cols = np.arange(width) // bw
    spatial = rows[:, None] * (int(cols.max()) + 1) + cols[None, :]
    return _broadcast(spatial, tuple(sample_shape), channels)


def pixels(sample_shape: tuple[int, ...], channels: str | None = None) -> Regions:
    """One region per pixel (channels move together)."""
    return grid(sample_shape, 1, channels)


def superpixels(
    image: np.ndarray, n_segments: int = 50, compactness: float = 10.0, channels: str | None = None
) -> Regions:
    """SLIC superpixels of one image (scikit-image), as regions of that image's shape."""
    from skimage.segmentation import slic

    image = np.asarray(image, dtype=np.float64)
    h_axis, w_axis, channel_axis = spatial_axes(image.shape, channels)
    hwc = image if channel_axis is None else np.moveaxis(image, (h_axis, w_axis), (0, 1))
    span = float(hwc.max() - hwc.min()) or 1.0
    segments = slic(
        (hwc - hwc.min()) / span,
        n_segments=n_segments,
        compactness=compactness,
        start_label=0,
        channel_axis=None if channel_axis is None else -1,
    )
    return _broadcast(segments, image.shape, channels)


def partition_cut(
    clustering: npt.ArrayLike, sample_shape: tuple[int, ...], depth: int, channels: str | None = None
) -> Regions:
    """The Partition explainer's pixel tree cut ``depth`` levels below its root.

    ``clustering`` is the scipy linkage matrix of a tree whose leaves are the pixels (numbered
    ``y * W + x``), such as ``deepshap.maskers.Image(...).clustering`` or shap's. The regions are the
    nodes ``depth`` levels down (a leaf above that depth stays one region); :attr:`Regions.tree` keeps
    the tree above them, for exact Owen values (:func:`deepshap.metrics.owen_values`).
    """
    linkage = np.asarray(clustering)
    if callable(clustering) or linkage.ndim != 2 or linkage.shape[1] != 4:
        raise ValueError(
            "clustering must be a linkage matrix over pixels (an Image masker with the axis partition); "
            "superpixel trees depend on the image: use metrics.superpixels instead."
        )
    height, width = _height_width(tuple(sample_shape), channels)
    n_leaves = linkage.shape[0] + 1
    if n_leaves != height * width:
        raise ValueError(f"The tree has {n_leaves} leaves but the images have {height * width} pixels.")
    children = {n_leaves + i: (int(a), int(b)) for i, (a, b) in enumerate(linkage[:, :2])}

    def pixels_of(node: int) -> list[int]:
        stack, found = [node], []
        while stack:
            current = stack.pop()
            if current < n_leaves:
                found.append(current)
            else:
                stack.extend(children[current])
        return found

    cut: list[int] = []
    top: dict[int, tuple[int, ...]] = {}

    def descend(node: int, level: int) -> int:
        if level == depth or node < n_leaves:
            cut.append(node)
            return len(cut) - 1
        left, right = (descend(child, level + 1) for child in children[node])
        top[node] = (left, right)
        return -node - 1  # internal nodes get their ids once the number of regions is known

    descend(n_leaves + linkage.shape[0] - 1, 0)
    n_regions = len(cut)
    # linkage ids grow from the leaves to the root, so sorted ids put children before parents
    renumber = {node: n_regions + i for i, node in enumerate(sorted(top))}

    def resolve(ref: int) -> int:
        return ref if ref >= 0 else renumber[-ref - 1]

    tree = {renumber[node]: (resolve(a), resolve(b)) for node, (a, b) in top.items()}
    spatial = np.empty(height * width, dtype=np.int64)
    for region, node in enumerate(cut):
        spatial[pixels_of(node)] = region
    regions = _broadcast(spatial.reshape(height, width), tuple(sample_shape), channels)
    object.__setattr__(regions, "tree", tree)
    return regions
