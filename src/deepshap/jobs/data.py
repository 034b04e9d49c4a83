"""Where a job's images come from, cut into store chunks of :class:`~deepshap.jobs.engine.WorkItem`.

Every source yields chunk ``k`` as images ``k * chunk_size`` onwards, skipping chunks already in the store
without reading them (a folder's skipped images are not decoded, an array's not touched).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol, TypeGuard

import numpy as np
import numpy.typing as npt

from deepshap._typing import JSONObject
from deepshap.jobs.engine import WorkItem
from deepshap.jobs.images import ImageDecoder
from deepshap.jobs.spec import array_digest

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
SAMPLED_ROWS = 64  # rows of a .npy file hashed into its fingerprint
SIZE_SAMPLE = 32  # image files whose size is read to find a folder's common size


class DataSource(Protocol):
    @property
    def n_images(self) -> int | None:
        """How many images, or None for a stream of unknown length."""
        ...

    def fingerprint(self) -> JSONObject: ...

    def items(self, chunk_size: int, skip: set[int]) -> Iterator[WorkItem]: ...

    def sample(self, n: int, seed: int) -> np.ndarray:
        """``n`` images drawn without replacement with ``seed`` (the background)."""
        ...


class NpyRows:
    """The rows of a ``.npy`` file, read with explicit reads at their offsets: unlike a memmap, the pages
    read do not stay in the process's memory, which then does not grow with the file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        with open(self.path, "rb") as file:
            version = np.lib.format.read_magic(file)
            if version == (1, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(file)
            elif version == (2, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(file)
            else:
                raise ValueError(f"data: {self.path} is a .npy file of version {version}; save it again.")
            self.offset = file.tell()
        if fortran_order or dtype.hasobject:
            raise ValueError(f"data: {self.path} must be a C-ordered array of numbers.")
        self.shape: tuple[int, ...] = tuple(shape)
        self.dtype = dtype
        self.ndim = len(self.shape)
        self.row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: slice | np.ndarray) -> np.ndarray:
        """A new, writable array of the rows ``rows`` (a slice of step 1, or row indices)."""
        if isinstance(rows, slice):
            start, stop, _ = rows.indices(self.shape[0])
            return self._read(start, max(stop - start, 0))
        return np.stack([self._read(int(i), 1)[0] for i in rows]) if len(rows) else self._read(0, 0)

    def _read(self, start: int, count: int) -> np.ndarray:
        with open(self.path, "rb") as file:
            file.seek(self.offset + start * self.row_bytes)
            data = np.fromfile(file, dtype=self.dtype, count=count * self.row_bytes // self.dtype.itemsize)
        return data.reshape(count, *self.shape[1:])


class ArraySource:
    """An array of images, or the rows of a ``.npy`` file (:class:`NpyRows`, read chunk by chunk)."""

    def __init__(self, array: np.ndarray | NpyRows, name: str = "array") -> None:
        if array.ndim < 2:
            raise ValueError(f"data must be an array of images (N, ...); got shape {array.shape}.")
        self.array = array
        self.name = name
        self.n_images = int(array.shape[0])

    def fingerprint(self) -> JSONObject:
        fingerprint: JSONObject = {
            "kind": "array",
            "shape": list(self.array.shape),
            "dtype": self.array.dtype.str,
            "sha256": _rows_digest(self.array),
        }
        if isinstance(self.array, NpyRows):
            status = self.array.path.stat()
            fingerprint |= {"size": status.st_size, "mtime_ns": status.st_mtime_ns}
        return fingerprint

    def items(self, chunk_size: int, skip: set[int]) -> Iterator[WorkItem]:
        for chunk, start in enumerate(range(0, self.n_images, chunk_size)):
            if chunk in skip:
                continue
            stop = min(start + chunk_size, self.n_images)
            # a copy of its own: a view of a read-only array would reach torch as a read-only tensor
            images = np.array(self.array[start:stop], dtype=np.float32)
            yield WorkItem(chunk, [str(i) for i in range(start, stop)], images, {})

    def sample(self, n: int, seed: int) -> np.ndarray:
        rows = np.sort(
            np.random.default_rng(seed).choice(self.n_images, min(n, self.n_images), replace=False)
        )
        return np.asarray(self.array[rows], dtype=np.float32)


class BatchSource:
    """An iterable of image batches, re-cut into chunks; resuming needs it to yield the same batches."""

    def __init__(self, batches: Iterable[npt.ArrayLike], n_images: int | None = None) -> None:
        self._stream = (row for batch in batches for row in np.asarray(batch, dtype=np.float32))
        self._head: list[np.ndarray] = []  # rows read for the background, still to be explained
        self.n_images = n_images

    def fingerprint(self) -> JSONObject:
        return {"kind": "batches", "n_images": self.n_images}

    def _rows(self) -> Iterator[np.ndarray]:
        """Every row once: those the background sample read first, then the rest of the stream."""
        head, self._head = self._head, []
        yield from head
        yield from self._stream

    def items(self, chunk_size: int, skip: set[int]) -> Iterator[WorkItem]:
        chunk, rows = 0, []
        for i, row in enumerate(self._rows()):
            if chunk not in skip:
                rows.append(row)
            if (i + 1) % chunk_size == 0:
                if rows:
                    yield WorkItem(
                        chunk, [str(j) for j in range(i + 1 - len(rows), i + 1)], np.stack(rows), {}
                    )
                chunk, rows = chunk + 1, []
        if rows:
            start = chunk * chunk_size
            yield WorkItem(chunk, [str(j) for j in range(start, start + len(rows))], np.stack(rows), {})

    def sample(self, n: int, seed: int) -> np.ndarray:
        """A seeded sample of the first batches (a stream cannot be sampled as a whole)."""
        first = self._head
        for row in self._stream:
            first.append(row)
            if len(first) >= 4 * n:
                break
        if not first:
            raise ValueError("data: the iterable of batches is empty.")
        rows = np.sort(np.random.default_rng(seed).choice(len(first), min(n, len(first)), replace=False))
        return np.stack([first[i] for i in rows])


class FolderSource:
    """The PNG and JPEG files under a folder (sorted by relative path), decoded with Pillow."""

    def __init__(self, folder: Path, decoder: ImageDecoder) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"data: {self.folder} is not a folder.")
        self.paths = sorted(
            p for p in self.folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
        )
        if not self.paths:
            raise ValueError(f"data: no PNG or JPEG files under {self.folder}.")
        self.decoder = decoder
        self.n_images = len(self.paths)
        if decoder.size is None:
            decoder.size = self._common_size()

    def _common_size(self) -> tuple[int, int]:
        """The most common size over up to ``SIZE_SAMPLE`` files spread over the folder (the first file
        may be the odd one out)."""
        spread = np.unique(np.linspace(0, self.n_images - 1, min(self.n_images, SIZE_SAMPLE)).astype(int))
        sizes: Counter[tuple[int, int]] = Counter()
        for i in spread:
            try:
                sizes[self.decoder.natural_size(self.paths[i])] += 1
            except (OSError, ValueError):
                continue
        if not sizes:
            raise ValueError(
                f"data: none of {len(spread)} images sampled under {self.folder} can be read; "
                "pass --image-size WxH if only some are broken."
            )
        return sizes.most_common(1)[0][0]

    def _id(self, path: Path) -> str:
        return path.relative_to(self.folder).as_posix()

    def fingerprint(self) -> JSONObject:
        digest = hashlib.sha256()
        for path in self.paths:
            status = path.stat()
            digest.update(f"{self._id(path)}\0{status.st_size}\0{status.st_mtime_ns}\n".encode())
        return {
            "kind": "folder",
            "n_images": self.n_images,
            "files_sha256": digest.hexdigest(),
            "decoder": self.decoder.settings(),
        }

    def items(self, chunk_size: int, skip: set[int]) -> Iterator[WorkItem]:
        for chunk, start in enumerate(range(0, self.n_images, chunk_size)):
            if chunk in skip:
                continue
            paths = self.paths[start : start + chunk_size]
            decoded, errors = self.decoder.decode_many(paths)
            ids = [self._id(p) for p in paths]
            ok = [image for image in decoded if image is not None]
            shape = (0, *self.decoder.image_shape())
            images = np.stack(ok) if ok else np.zeros(shape, np.float32)
            yield WorkItem(chunk, ids, images, {ids[i]: text for i, text in errors.items()})

    def sample(self, n: int, seed: int) -> np.ndarray:
        order = np.random.default_rng(seed).permutation(self.n_images)
        chosen: list[np.ndarray] = []
        for i in order:  # an unreadable image is passed over: the next one in the seeded order replaces it
            decoded, _ = self.decoder.decode_many([self.paths[i]])
            if decoded[0] is not None:
                chosen.append(decoded[0])
            if len(chosen) == n:
                break
        if not chosen:
            raise ValueError(f"data: no image under {self.folder} can be read.")
        return np.stack(chosen)


#: A job's images as a user names them: a folder, a ``.npy`` file, an array (numpy or anything with
#: ``__array__`` and ``shape``), an iterable of batches, or a :class:`DataSource` of one's own.
Dataset = DataSource | str | Path | np.ndarray | Iterable[npt.ArrayLike]


def open_source(
    data: Dataset, decoder: ImageDecoder | None = None, n_images: int | None = None
) -> DataSource:
    """A data source for a folder, a ``.npy`` file (memory-mapped), an array or an iterable of batches."""
    if _is_source(data):
        return data
    if isinstance(data, str | Path):
        path = Path(data).expanduser()
        if path.is_dir():
            return FolderSource(path, decoder or ImageDecoder())
        if path.suffix == ".npy" and path.is_file():
            return ArraySource(NpyRows(path), name=str(path))
        raise FileNotFoundError(f"data: {path} is neither a folder of images nor a .npy file.")
    if isinstance(data, np.ndarray):
        return ArraySource(data)
    if hasattr(data, "__array__") and hasattr(data, "shape"):
        return ArraySource(np.asarray(data))
    if isinstance(data, Iterable):
        return BatchSource(data, n_images)
    raise TypeError(
        f"data must be a folder, a .npy file, an array or an iterable of batches; got {type(data)}."
    )


def _is_source(data: object) -> TypeGuard[DataSource]:
    """Whether ``data`` is a data source already (it has a source's methods)."""
    return hasattr(data, "items") and hasattr(data, "sample") and hasattr(data, "fingerprint")


def _rows_digest(array: np.ndarray | NpyRows) -> str:
    """sha256 of an array in memory; of up to ``SAMPLED_ROWS`` evenly spaced rows of a file (a file of
    millions of images is not read through at each start; its size and mtime are fingerprinted too)."""
    if not isinstance(array, NpyRows):
        return array_digest(np.asarray(array))
    n = array.shape[0]
    rows = np.unique(np.linspace(0, n - 1, min(n, SAMPLED_ROWS)).round().astype(np.int64))
    return array_digest(array[rows])
