"""Explain a whole dataset: streamed to a Zarr store and a Parquet index, resumable, local or on Ray."""
