"""Saving an Image masker to a binary file object and loading it back (shap's ``save`` / ``load``).

The record is a magic string, the length of a JSON header (8 bytes, little-endian), the header (format
version, mask value, shape, partition options) and, for a background image, that image in numpy's ``.npy``
format. Nothing is pickled, so loading a file runs no code from it. Records can follow one another in one
stream: each load reads exactly one record.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, TypeVar

import numpy as np

if TYPE_CHECKING:
    from deepshap.maskers._image import Image

Masker = TypeVar("Masker")

MAGIC = b"deepshap.maskers.Image\n"
VERSION = 1


def save_image_masker(masker: Image, out_file: IO[bytes]) -> None:
    """Write ``masker`` (a :class:`deepshap.maskers.Image`) to the binary file object ``out_file``."""
    value = masker.mask_value
    background = None
    if isinstance(value, str):
        stored: object = value
    elif np.ndim(value) == 0:
        stored = np.asarray(value).item()
    else:
        stored, background = None, np.asarray(value)
    header = {
        "version": VERSION,
        "mask_value": stored,
        "background": background is not None,
        "shape": list(masker.input_shape),
        "partition": masker.partition,
        "n_segments": masker.n_segments,
    }
    encoded = json.dumps(header).encode()
    out_file.write(MAGIC + len(encoded).to_bytes(8, "little") + encoded)
    if background is not None:
        np.save(out_file, background, allow_pickle=False)


def load_image_masker(cls: Callable[..., Masker], in_file: IO[bytes]) -> Masker:
    """Read one masker written by :func:`save_image_masker` from ``in_file`` and build it with ``cls``."""
    magic = in_file.read(len(MAGIC))
    if magic != MAGIC:
        raise ValueError(
            "This file does not hold a deepshap Image masker at its current position (written by "
            "maskers.Image.save); seek to where it was saved, e.g. f.seek(0)."
        )
    length = int.from_bytes(in_file.read(8), "little")
    header = json.loads(in_file.read(length).decode())
    if header.get("version") != VERSION:
        raise ValueError(
            f"The masker was saved in format version {header.get('version')}; this deepshap reads "
            f"version {VERSION}."
        )
    mask_value = np.load(in_file, allow_pickle=False) if header["background"] else header["mask_value"]
    return cls(
        mask_value,
        tuple(header["shape"]),
        partition=header["partition"],
        n_segments=header["n_segments"],
    )
