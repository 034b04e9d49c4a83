"""A job's results on disk: a Zarr v3 array of attributions chunked by image, a Parquet index, a manifest.

Layout of ``DIR``::

    manifest.json        the job's fingerprint (model, explainer, parameters, data), its settings and the
                         digest of the model's weights; written at the first commit
    values.zarr/         (N, *input_shape, R) attributions, one Zarr chunk per job chunk; NaN rows for
                         images that failed
    index/               one Parquet file per committed chunk; its presence commits the chunk
    index.parquet        every chunk's rows in image order, written when the job finishes

A chunk is committed by writing its Zarr chunk (the Zarr store writes each file atomically) and then its
index file (written to a temporary name and renamed). A crash between the two leaves a chunk without index
file: it is redone, rewriting the same Zarr chunk. Committing a chunk twice writes it once.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import numpy as np

from deepshap._typing import JSONObject

if TYPE_CHECKING:
    import pyarrow as pa
    from zarr.types import AnyArray

from deepshap.jobs.engine import ChunkResult, IndexRow

MANIFEST = "manifest.json"
VALUES = "values.zarr"
INDEX_PARTS = "index"
INDEX = "index.parquet"
FORMAT_VERSION = 1


class JobMismatchError(RuntimeError):
    """The output folder holds another job's results."""


class StoreWriteError(RuntimeError):
    """The store cannot be written (disk full, no permission): the job stops; a rerun resumes."""


class ResultStore:
    """Opens (creating, resuming or refusing) the store of one job and commits its chunks."""

    def __init__(self, out: Path | str, manifest: JSONObject, overwrite: bool = False) -> None:
        self.out = Path(out).expanduser()
        self.manifest = json.loads(json.dumps(manifest, default=str))  # as it reads back from disk
        self.chunk_size = int(manifest["chunk_size"])
        self.n_images: int | None = manifest.get("n_images")
        self._values: AnyArray | None = None
        self._manifest_written = False
        with _storage_errors(self.out):
            self._open(overwrite)
        self.done = self._committed_chunks()

    # opening ----------------------------------------------------------------------------------------
    def _open(self, overwrite: bool) -> None:
        """Resume, refuse or clear what ``out`` holds; nothing is written before the first commit, so a
        job that fails before explaining anything (a bad model or argument) leaves no store behind."""
        manifest_path = self.out / MANIFEST
        if manifest_path.exists():
            existing = json.loads(manifest_path.read_text())
            if existing.get("fingerprint") == self.manifest["fingerprint"] and not overwrite:
                self.manifest["model_weights"] = existing.get("model_weights")
                self._manifest_written = True
                return
            if not overwrite and self._committed_chunks():
                changed = sorted(
                    key
                    for key in set(existing.get("fingerprint", {})) | set(self.manifest["fingerprint"])
                    if existing.get("fingerprint", {}).get(key) != self.manifest["fingerprint"].get(key)
                )
                raise JobMismatchError(
                    f"{self.out} holds the results of another job (it differs in: {', '.join(changed)}); "
                    "pass --overwrite (overwrite=True) to replace them, or choose another output folder."
                )
            self._clear()  # overwrite, or a job that committed nothing: nothing is lost
        elif self.out.exists() and any(self.out.iterdir()):
            raise JobMismatchError(
                f"{self.out} is not empty and holds no deepshap job; choose an empty or new output folder."
            )

    def _check_model(self, digest: str | None) -> None:
        """Write the manifest, with the model's weights digest, at the first commit; refuse a resumed job
        whose model has other weights (the chunks would mix two models)."""
        if not self._manifest_written:
            self.manifest["model_weights"] = digest
            (self.out / INDEX_PARTS).mkdir(parents=True, exist_ok=True)
            text = json.dumps(self.manifest, indent=2, default=str).encode()
            _write_atomically(self.out / MANIFEST, lambda temporary: temporary.write_bytes(text))
            self._manifest_written = True
            return
        known = self.manifest.get("model_weights")
        if digest is not None and known is not None and digest != known:
            raise JobMismatchError(
                f"the model's weights differ from those that wrote {self.out} (the entry point's module is "
                "the same, the weights it loads are not); pass --overwrite (overwrite=True) to start "
                "again with these weights, or choose another output folder."
            )

    def _clear(self) -> None:
        """Remove a previous job's files (only those a job writes: a user's other files stay)."""
        for name in (VALUES, INDEX_PARTS):
            shutil.rmtree(self.out / name, ignore_errors=True)
        for name in (INDEX, MANIFEST, "report"):
            path = self.out / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()

    def _committed_chunks(self) -> set[int]:
        return {
            int(path.stem.removeprefix("chunk-")) for path in (self.out / INDEX_PARTS).glob("chunk-*.parquet")
        }

    # committing -------------------------------------------------------------------------------------
    def commit(self, result: ChunkResult) -> None:
        """Write one chunk's values and index rows; a chunk already committed is left as it is."""
        if result.chunk in self.done:
            return
        with _storage_errors(self.out):
            self._check_model(result.model_digest)
            start = result.chunk * self.chunk_size
            ok = [i for i, row in enumerate(result.rows) if row["error"] is None]
            if len(ok) != len(result.values):
                raise ValueError(f"chunk {result.chunk}: {len(result.values)} values for {len(ok)} images.")
            rows: list[IndexRow] = [
                {**row, "chunk": result.chunk, "position": start + i} for i, row in enumerate(result.rows)
            ]
            if ok:
                values = self._array(result.values.shape[1:], start + len(result.rows))
                block = np.full((len(result.rows), *values.shape[1:]), np.nan, dtype=values.dtype)
                block[ok] = result.values
                values[start : start + len(result.rows)] = block
                for i in ok:  # the gap of the values as stored (float16 rounds them)
                    fx, base = rows[i].get("fx"), rows[i].get("base_values")
                    if fx is None or base is None:
                        raise ValueError(f"chunk {result.chunk}: image {i} has values but no outputs.")
                    rows[i]["gap"] = _stored_gap(block[i], fx, base)
                chunk_folder = self.out / VALUES / "c" / str(result.chunk)
                for path in chunk_folder.rglob("*"):  # on disk before the index file commits the chunk
                    if path.is_file():
                        _fsync(path)
                for folder in (*[p for p in chunk_folder.rglob("*") if p.is_dir()], chunk_folder):
                    _fsync(folder)
                _fsync(chunk_folder.parent)
            self._write_rows(result.chunk, rows)
        self.done.add(result.chunk)

    def _array(self, value_shape: tuple[int, ...], end: int) -> AnyArray:
        """The Zarr array, created at the first commit (the value shape is known then), grown for a
        stream of unknown length."""
        import zarr

        if self._values is None:
            path = self.out / VALUES
            if (path / "zarr.json").exists():
                self._values = zarr.open_array(str(path), mode="r+")
            else:
                n = self.n_images if self.n_images is not None else end
                self._values = zarr.create_array(
                    str(path),
                    shape=(n, *value_shape),
                    chunks=(self.chunk_size, *value_shape),
                    dtype=self.manifest["dtype"],
                    fill_value=np.nan,
                )
        if tuple(self._values.shape[1:]) != tuple(value_shape):
            raise ValueError(
                f"attributions of shape {value_shape} do not fit the store's {self._values.shape[1:]}."
            )
        if end > self._values.shape[0]:
            self._values.resize((end, *self._values.shape[1:]))
        return self._values

    def _write_rows(self, chunk: int, rows: list[IndexRow]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(rows, schema=index_schema())
        final = index_part(self.out, chunk)
        _write_atomically(final, lambda temporary: pq.write_table(table, temporary))

    # finishing --------------------------------------------------------------------------------------
    def finish(self) -> Path:
        """Write ``index.parquet`` (every row, in image order) from the chunks' index files, one part at
        a time (the whole index is never in memory)."""
        import pyarrow.parquet as pq

        def write(temporary: Path) -> None:
            with pq.ParquetWriter(temporary, index_schema()) as writer:
                for part in _index_parts(self.out):  # chunk order is image order
                    writer.write_table(pq.read_table(part, schema=index_schema()))

        with _storage_errors(self.out):
            if not self._manifest_written:  # a job of no image
                self._check_model(None)
            final = self.out / INDEX
            _write_atomically(final, write)
        return final

    def complete(self) -> bool:
        """Whether every chunk of a dataset of known length is committed (nothing is left to explain)."""
        if self.n_images is None or not self._manifest_written:
            return False
        return len(self.done) >= -(-self.n_images // self.chunk_size)

    def images_done(self) -> int:
        if not self.done:
            return 0
        return len(read_index_parts(self.out))


def index_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            ("id", pa.string()),
            ("chunk", pa.int64()),
            ("position", pa.int64()),
            ("classes", pa.list_(pa.int64())),
            ("class_names", pa.list_(pa.string())),
            ("fx", pa.list_(pa.float64())),
            ("base_values", pa.list_(pa.float64())),
            ("gap", pa.float64()),
            ("seconds", pa.float64()),
            ("error", pa.string()),
        ]
    )


def _index_parts(out: Path) -> list[Path]:
    return sorted((Path(out) / INDEX_PARTS).glob("chunk-*.parquet"))


def read_index_parts(out: Path) -> pa.Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = _index_parts(out)
    if not parts:
        return index_schema().empty_table()
    return pa.concat_tables([pq.read_table(part, schema=index_schema()) for part in parts])


def index_part(out: Path, chunk: int) -> Path:
    """The index file of one chunk (present once the chunk is committed)."""
    return Path(out) / INDEX_PARTS / f"chunk-{chunk:08d}.parquet"


def _stored_gap(values: np.ndarray, fx: list[float], base: list[float]) -> float:
    sums = values.reshape(-1, values.shape[-1]).sum(axis=0, dtype=np.float64)
    return float(np.abs(sums - (np.asarray(fx) - np.asarray(base))).max())


def _write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """``write(temporary)`` then rename to ``path``, each step on disk (the file and its folder synced)
    before the next: a crash leaves the old file or the new one, never part of one."""
    temporary = path.with_name(path.name + ".tmp")
    write(temporary)
    _fsync(temporary)
    os.replace(temporary, path)
    _fsync(path.parent)


def _fsync(path: Path) -> None:
    """Flush a file, or a folder's entries, to disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class _storage_errors:
    """Turn an OSError while writing into a :class:`StoreWriteError` that says what to do."""

    def __init__(self, out: Path) -> None:
        self.out = out

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if isinstance(exc, OSError):
            reason = exc.strerror or str(exc)
            raise StoreWriteError(
                f"cannot write the results to {self.out}: {reason}. Nothing committed is lost: free space "
                "or fix the permissions, then rerun the same command to resume."
            ) from exc
