"""``explain_dataset``: explain every image of a dataset into a resumable store (the job API)."""

from __future__ import annotations

import functools
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

import numpy as np

from deepshap._typing import NativeModel
from deepshap.jobs.data import Dataset, DataSource, open_source
from deepshap.jobs.engine import Engine
from deepshap.jobs.images import ImageDecoder
from deepshap.jobs.models import Preprocess, model_fingerprint
from deepshap.jobs.spec import DTYPES, JobSpec, array_digest, fingerprint_digest
from deepshap.jobs.store import FORMAT_VERSION, ResultStore
from deepshap.jobs.worker import ExplainWorker

if TYPE_CHECKING:
    from tqdm import tqdm


@dataclass
class JobResult:
    """What a finished job wrote: the store folder, its index and counts."""

    out: Path
    index: Path
    n_images: int
    n_errors: int
    n_explained_now: int
    seconds: float


def explain_dataset(
    model: str | Path | NativeModel,
    data: Dataset,
    out: Path | str,
    explainer: str = "deep",
    *,
    background: int | np.ndarray | Path | str = 100,
    outputs: int | None = None,
    batch_size: int = 32,
    explainer_options: Mapping[str, object] | None = None,
    output_names: Sequence[str] | None = None,
    preprocess: Preprocess | None = None,
    image_size: tuple[int, int] | None = None,
    resize: bool = False,
    crop: bool = False,
    grayscale: bool = False,
    n_images: int | None = None,
    dtype: str = "float32",
    seed: int = 0,
    engine: str | Engine = "local",
    address: str | None = None,
    actors: int | None = None,
    threads_per_actor: int | None = None,
    overwrite: bool = False,
    quiet: bool = False,
) -> JobResult:
    """Explain every image of ``data`` with ``explainer`` and write the results to ``out``.

    ``model``: a model object, ``"package.module:function"`` (returning the model or ``(model,
    preprocess)``), or a ``.keras`` / ``.pt2`` / TorchScript file. ``data``: a folder of PNG/JPEG images
    (decoded to float32 in [0, 1], ``(H, W, C)``; ``image_size=(width, height)`` with ``resize``/``crop``
    to fit them), a ``.npy`` file, an array or an iterable of batches (``n_images`` if known). Images go
    through ``preprocess`` (if any) before the model. ``background``: how many images to sample from the
    data with ``seed``, or the background images (an array, a ``.npy`` file or a folder). ``outputs``: the
    top-K classes to explain per image (all when None). ``batch_size``: images per store chunk and per
    explainer call. ``explainer_options`` go to the explainer (nsamples, max_evals, masker, ...).

    ``engine="ray"`` runs on Ray (``address``: the cluster to join) with ``actors`` actors of
    ``threads_per_actor`` threads each (the Ray engine's defaults when None); the local engine ignores
    them, with a warning.

    Rerunning the same job in the same ``out`` resumes it; a different job's store is refused unless
    ``overwrite``. Returns a :class:`JobResult`; open the results with :func:`deepshap.jobs.open_job`.
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}; got {dtype!r}.")
    if isinstance(batch_size, bool) or int(batch_size) < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}.")
    started = time.perf_counter()
    decoder = ImageDecoder(image_size, resize=resize, crop=crop, mode="L" if grayscale else "RGB")
    source = open_source(data, decoder, n_images)
    background_images = _background(background, source, decoder, seed)
    spec = JobSpec(
        model=model,
        explainer=explainer,
        background=background_images,
        outputs=outputs,
        explainer_options=dict(explainer_options or {}),
        seed=seed,
        output_names=None if output_names is None else tuple(map(str, output_names)),
        preprocess=preprocess,
    )
    fingerprint = {
        "format": FORMAT_VERSION,
        "model": model_fingerprint(model),
        "preprocess": _callable_name(preprocess),
        "explainer": explainer,
        "explainer_options": {k: repr(v) for k, v in sorted(spec.explainer_options.items())},
        "outputs": outputs,
        "output_names": fingerprint_digest({"names": spec.output_names}),
        "batch_size": int(batch_size),
        "dtype": dtype,
        "seed": seed,
        "data": source.fingerprint(),
        "background": array_digest(background_images),
    }
    manifest = {
        "fingerprint": fingerprint,
        "job": fingerprint_digest(fingerprint),
        "chunk_size": int(batch_size),
        "n_images": source.n_images,
        "dtype": dtype,
        "explainer": explainer,
        "output_names": None if spec.output_names is None else list(spec.output_names),
        "data_path": str(Path(data).expanduser().resolve()) if isinstance(data, str | Path) else None,
        "decoder": decoder.settings(),
    }
    store = ResultStore(out, manifest, overwrite=overwrite)
    done_before = store.images_done()
    runner = _engine(engine, address, actors, threads_per_actor)
    if not store.complete():  # a finished job's rerun loads no model
        with _progress_bar(source.n_images, done_before, quiet) as progress:
            runner.run(
                source.items(int(batch_size), set(store.done)),
                functools.partial(ExplainWorker, spec),
                store.commit,
                progress,
            )
    index = store.finish()
    return _summary(store, index, done_before, time.perf_counter() - started)


def _background(
    background: int | np.ndarray | Path | str, source: DataSource, decoder: ImageDecoder, seed: int
) -> np.ndarray:
    if isinstance(background, bool):
        raise TypeError("background must be a number of images or the images themselves.")
    if isinstance(background, int | np.integer):
        if background < 1:
            raise ValueError(f"background must be at least 1 image; got {background}.")
        return np.ascontiguousarray(source.sample(int(background), seed), dtype=np.float32)
    if isinstance(background, str | Path):
        path = Path(background).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"--background {path}: no such file or folder.")
        if path.is_dir():
            from deepshap.jobs.data import FolderSource

            folder = FolderSource(
                path, ImageDecoder(decoder.size, decoder.resize, decoder.crop, decoder.mode)
            )
            return folder.sample(folder.n_images, seed)
        if path.suffix == ".npy":
            return np.load(path, allow_pickle=False).astype(np.float32)
        raise FileNotFoundError(f"background: {path} is neither a folder of images nor a .npy file.")
    return np.ascontiguousarray(np.asarray(background, dtype=np.float32))


class _ActorPool(TypedDict, total=False):
    """The Ray engine's pool options the caller set."""

    num_actors: int
    threads_per_actor: int


def _engine(
    engine: str | Engine, address: str | None, actors: int | None, threads_per_actor: int | None
) -> Engine:
    given = {"num_actors": actors, "threads_per_actor": threads_per_actor}
    for name, value in given.items():
        if value is not None and (isinstance(value, bool) or int(value) < 1):
            raise ValueError(f"{name} must be a positive integer; got {value!r}.")
    pool: _ActorPool = {}
    if actors is not None:
        pool["num_actors"] = int(actors)
    if threads_per_actor is not None:
        pool["threads_per_actor"] = int(threads_per_actor)
    if not isinstance(engine, str):
        return engine
    if engine == "local":
        from deepshap.jobs.engines.local import LocalEngine

        if pool:
            warnings.warn(
                "actors and threads_per_actor apply to the ray engine; the local engine ignores them.",
                stacklevel=3,
            )
        return LocalEngine()
    if engine == "ray":
        try:
            from deepshap.jobs.engines.ray_engine import RayEngine
        except ModuleNotFoundError as exc:
            missing = exc.name or "ray"
            raise RuntimeError(
                f"the ray engine is not available ({missing} cannot be imported): "
                "pip install 'deepshap[jobs,ray]'."
            ) from exc
        return RayEngine(address=address, **pool)
    raise ValueError(f"engine must be 'local' or 'ray'; got {engine!r}.")


def _progress_bar(total: int | None, initial: int, quiet: bool) -> tqdm:
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        initial=initial,
        unit="img",
        desc="explaining",
        disable=quiet,
        dynamic_ncols=True,
        smoothing=0.1,
    )


def _callable_name(function: object) -> str | None:
    if function is None:
        return None
    return f"{getattr(function, '__module__', '')}.{getattr(function, '__qualname__', repr(function))}"


def _summary(store: ResultStore, index: Path, done_before: int, seconds: float) -> JobResult:
    import pyarrow.parquet as pq

    table = pq.read_table(index, columns=["error"])
    n_images = table.num_rows
    n_errors = n_images - table.column("error").null_count
    return JobResult(store.out, index, n_images, n_errors, n_images - done_before, seconds)
