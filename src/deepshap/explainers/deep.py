"""DeepExplainer: DeepSHAP (DeepLIFT multipliers averaged over a background), framework-neutral.

Backend interface (implemented once per framework)
--------------------------------------------------
Each framework provides, in ``deepshap.frameworks.<pytorch|keras>.deep``, the function::

    deep_attributions(adapter, inputs, output_index, batch_size) -> list[np.ndarray]

- ``adapter``: the model adapter from :func:`deepshap.frameworks.load_adapter`; its ``background`` (list of
  native tensors at the explained level, M rows) are the references.
- ``inputs``: list (one per model input) of native tensors at the explained level, N rows (already
  validated and converted by ``adapter.to_inputs`` + ``adapter.explained_inputs``).
- ``output_index``: ``(N, R)`` int64 numpy array; row i lists the model outputs explained for sample i.
- ``batch_size``: the number of (sample, background) pairs processed at once (bounds memory).
- returns one numpy array per input, shaped ``(N, *input_shape, R)``:
  ``phi[i, ..., r] = mean_j multipliers(x_i, b_j)[output_index[i, r]] * (x_i - b_j)``, where the
  multipliers are DeepLIFT/Shapley multipliers of the explained output with respect to the input.
  Each pair must satisfy summation-to-delta, so ``phi[i].sum() == f(x_i)[k] - mean_j f(b_j)[k]``.

The front-end here validates input, picks the outputs (``ranked_output``), calls the backend, checks
additivity and formats the result. It never imports a framework.
"""
