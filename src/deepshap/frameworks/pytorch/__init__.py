"""PyTorch adapter (imports torch: load it through :func:`deepshap.frameworks.load_adapter`)."""
