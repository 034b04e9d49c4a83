"""Masked images as root paths of a partition tree, and how to turn one such image into another cheaply.

The Owen recursion only ever asks for images of one shape: walking down the tree from the root, the
sibling of each node entered is kept or hidden, and the walk ends with the two children of its last node.
:func:`path_changes` gives the few regions that differ between two such images and :func:`match_paths`
pairs a batch of new images with the images already in a buffer so that these differences stay small.
"""

from __future__ import annotations

Path = tuple[tuple[int, bool], ...]
"""A masked image as a root path of a tree: ``(node, kept)`` regions that tile the image, root first.

Each region is the sibling of the next node on a path down from the root, and the last two are the
children of the path's last node (or the root alone). These are the images the Owen recursion asks for.
"""

BLOCK_COST = 0.05
"""The fixed cost of copying one region, in copies of a whole image (a call costs ~1-2 us, an image ~45)."""


def path_changes(area: list[float], old: Path, new: Path) -> tuple[list[tuple[int, bool]], float]:
    """The regions to rewrite to turn the image of path ``old`` into that of ``new``, and their cost.

    Along the common part of the two paths only the regions whose kept flag differs change. Where the
    paths part, inside a region one path keeps whole and the other splits, either the splitting path's
    pieces that disagree are rewritten, or the whole region (whichever copies less).
    """
    changes: list[tuple[int, bool]] = []
    cost = 0.0
    shared = min(len(old), len(new))
    i = 0
    while i < shared and old[i][0] == new[i][0]:
        if old[i][1] != new[i][1]:
            changes.append(new[i])
            cost += area[new[i][0]] + BLOCK_COST
        i += 1
    if i == len(old) == len(new):
        return changes, cost
    if i == len(old) - 1:  # old keeps the rest whole, new splits it: new's disagreeing pieces
        inside, inside_cost = _differing(area, new[i:], old[i][1])
    elif i == len(new) - 1:  # new keeps the rest whole, old splits it
        inside, inside_cost = _overwrite(area, old[i:], new[i])
    else:  # both split the rest into the same two halves, each continuing into another one
        inside, inside_cost = _differing(area, new[i + 1 :], old[i][1])
        overwrite, overwrite_cost = _overwrite(area, old[i + 1 :], new[i])
        inside += overwrite
        inside_cost += overwrite_cost
    return changes + inside, cost + inside_cost


def _differing(area: list[float], pieces: Path, kept: bool) -> tuple[list[tuple[int, bool]], float]:
    """The pieces whose kept flag is not ``kept``, and their cost."""
    differing = [piece for piece in pieces if piece[1] != kept]
    return differing, copy_cost(area, differing)


def _overwrite(
    area: list[float], pieces: Path, whole: tuple[int, bool]
) -> tuple[list[tuple[int, bool]], float]:
    """Make the region tiled by ``pieces`` all ``whole[1]``: rewrite the region, or just what differs."""
    differing, cost = _differing(area, pieces, whole[1])
    whole_cost = area[whole[0]] + BLOCK_COST
    if cost < whole_cost:
        return [(node, whole[1]) for node, _ in differing], cost
    return [whole], whole_cost


def copy_cost(area: list[float], regions: list[tuple[int, bool]]) -> float:
    return sum(area[node] for node, _ in regions) + BLOCK_COST * len(regions)


def match_paths(new: list[Path], old: list[Path]) -> list[tuple[int, int]]:
    """Pair each new path with an old one (equal numbers), longest shared prefix first: ``(new, old)``.

    Paths are grouped by their first region, each group matched within itself one region further down,
    and what a group cannot pair is paired at the level above: a greedy matching on the trie of paths
    that keeps most changes deep in the tree, where regions are small.
    """
    pairs: list[tuple[int, int]] = []

    def match(news: list[int], olds: list[int], depth: int) -> tuple[list[int], list[int]]:
        if len(news) == 1 == len(olds):
            pairs.append((news[0], olds[0]))
            return [], []
        groups: dict[tuple[int, bool] | None, tuple[list[int], list[int]]] = {}
        for side, paths, members in ((0, new, news), (1, old, olds)):
            for index in members:
                path = paths[index]
                groups.setdefault(path[depth] if depth < len(path) else None, ([], []))[side].append(index)
        left_news: list[int] = []
        left_olds: list[int] = []
        for region, (group_news, group_olds) in groups.items():
            if region is not None and group_news and group_olds:
                group_news, group_olds = match(group_news, group_olds, depth + 1)
            left_news += group_news
            left_olds += group_olds
        paired = min(len(left_news), len(left_olds))
        pairs.extend(zip(left_news[:paired], left_olds[:paired], strict=True))
        return left_news[paired:], left_olds[paired:]

    match(sorted(range(len(new)), key=new.__getitem__), sorted(range(len(old)), key=old.__getitem__), 0)
    return pairs
