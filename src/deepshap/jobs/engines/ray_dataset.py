"""A Ray Dataset of images as a job's work items: read and decoded on the cluster, chunked in the driver.

``ray.data.read_images(...)`` (or any dataset with an image column) is read by Ray's tasks; this module
cuts its rows, in order, into store chunks of ``chunk_size`` images. Order is preserved
(``preserve_order``), so chunk ``k`` holds the same images on every run and a rerun resumes a store.

The dataset's read tasks need CPUs of their own while the explaining actors hold theirs: on a cluster
whose CPUs all go to actors, start it with a CPU or two more (``ray.init(num_cpus=...)``) or use fewer
actors.
"""

from __future__ import annotations

from collections.abc import Container, Iterator
from typing import TYPE_CHECKING

import numpy as np

from deepshap.jobs.engine import WorkItem

if TYPE_CHECKING:
    from ray.data import Dataset


def work_items_from_ray_dataset(
    dataset: Dataset,
    chunk_size: int,
    image_column: str = "image",
    id_column: str | None = None,
    skip_chunks: Container[int] = (),
) -> Iterator[WorkItem]:
    """Yield the dataset's images as :class:`~deepshap.jobs.engine.WorkItem` of ``chunk_size`` rows.

    Args:
        dataset: a ``ray.data.Dataset`` with one image per row in ``image_column`` (arrays of one shape;
            ``read_images(..., size=...)`` gives that).
        chunk_size: images per chunk (the job's batch size).
        image_column: the column holding the images.
        id_column: a column whose values become the image ids (``read_images(include_paths=True)``
            gives ``"path"``); without it the ids are the row numbers.
        skip_chunks: chunks already committed; they are read (to keep the order) but not yielded.
    """
    if isinstance(chunk_size, bool) or int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be a positive integer; got {chunk_size!r}")
    columns = set(dataset.columns() or ())
    for name in (image_column, id_column):
        if name is not None and name not in columns:
            raise KeyError(f"the Ray Dataset has no column {name!r}; its columns are {sorted(columns)}")
    dataset.context.execution_options.preserve_order = True
    batches = dataset.iter_batches(batch_size=int(chunk_size), batch_format="numpy", drop_last=False)
    for chunk, batch in enumerate(batches):
        if chunk in skip_chunks:
            continue
        images = _stack(batch[image_column], image_column)
        first = chunk * int(chunk_size)
        ids = (
            [str(value) for value in batch[id_column]]
            if id_column is not None
            else [str(first + row) for row in range(len(images))]
        )
        yield WorkItem(chunk=chunk, ids=ids, images=images)


def _stack(column: np.ndarray, name: str) -> np.ndarray:
    """A numpy batch's image column as one ``(n, *shape)`` array (Ray gives an object array for
    variable-shaped tensors)."""
    if column.dtype != object:
        return np.ascontiguousarray(column)
    shapes = {np.shape(image) for image in column}
    if len(shapes) > 1:
        raise ValueError(
            f"the images of column {name!r} have different shapes {sorted(shapes)}: "
            "resize them when reading (ray.data.read_images(..., size=(height, width)))"
        )
    return np.ascontiguousarray(np.stack(list(column)))
