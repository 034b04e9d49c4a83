"""How DeepExplainer batches PyTorch samples and references: chunk sizes, outputs explained together,
batch axes merged with others, models that loop over their rows; the values never depend on it."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

import deepshap  # noqa: E402
from tests.helpers.torch_deep import Lambda, ReusedNet, additive_values, tensor_data  # noqa: E402


def test_chunking_does_not_change_the_result() -> None:
    """Small batches (background split, one sample per chunk) give the same values as one big batch."""
    torch.manual_seed(0)
    model, bg, X = ReusedNet().eval(), tensor_data((10, 1, 12, 12), 1), tensor_data((3, 1, 12, 12), 2)
    big = deepshap.DeepExplainer(model, bg, batch_size=1000).shap_values(X)
    small = deepshap.DeepExplainer(model, bg, batch_size=4).shap_values(X)
    np.testing.assert_allclose(np.asarray(big), np.asarray(small), rtol=1e-4, atol=1e-6)


class _Pick(nn.Module):
    """One output of a model, so its explanation takes a single backward pass over a fresh graph."""

    def __init__(self, model: nn.Module, k: int) -> None:
        super().__init__()
        self.model, self.k = model, k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)[:, self.k : self.k + 1]


def test_outputs_explained_together_equal_outputs_explained_alone() -> None:
    """The backward passes over one retained graph (one per output) do not leak into each other.

    The rules start right at the input (relu, max-pool), so their gradients reach the input directly.
    """
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(1, 3, 3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(48, 4),
        nn.Softmax(1),
    ).eval()
    bg, X = tensor_data((6, 1, 12, 12), 1), tensor_data((2, 1, 12, 12), 2)
    together = np.asarray(deepshap.DeepExplainer(model, bg).shap_values(X))  # (4, N, 1, 12, 12)
    alone = [deepshap.DeepExplainer(_Pick(model, k), bg).shap_values(X) for k in range(4)]
    assert np.abs(together).max() > 0
    np.testing.assert_allclose(together, np.stack(alone), rtol=1e-5, atol=1e-7)


class InnerBatch(nn.Module):
    """A nonlinearity applied where the batch is the inner factor of a merged axis: (tokens * batch, d)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.out = nn.Linear(12, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.lin(x).transpose(0, 1).reshape(-1, 4)  # (3 * batch, 4), batch inner
        h = torch.tanh(tokens).reshape(3, -1, 4).transpose(0, 1)
        return self.out(h.flatten(1))


def _same_as_one_sample_per_pass(model: nn.Module, bg: torch.Tensor, X: torch.Tensor, batch: int) -> None:
    """Additive with ``batch`` rows per pass and with one sample per pass, the same values both ways."""
    many = additive_values(model, bg, X, batch_size=batch)
    one = additive_values(model, bg, X, batch_size=len(bg))
    np.testing.assert_allclose(many[0], one[0], rtol=1e-5, atol=1e-7)


def test_batch_merged_as_inner_factor_falls_back_to_one_sample_chunks() -> None:
    """Shapes cannot tell (tokens * batch) from (batch * tokens); the values can, and the answer is right."""
    torch.manual_seed(0)
    _same_as_one_sample_per_pass(
        InnerBatch().eval(), tensor_data((5, 3, 4), 1), tensor_data((3, 3, 4), 2), 100
    )


class TokenwiseMLP(nn.Module):
    """A token-wise MLP on (batch * tokens, features) rows, pooled over the tokens."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ELU())
        self.out = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, tokens, features = x.shape
        h = self.inner(x.reshape(n * tokens, features)).reshape(n, tokens, -1)
        return self.out(h.mean(1))


def test_batch_merged_as_outer_factor_is_paired_without_falling_back(monkeypatch) -> None:
    """(batch * tokens) rows split into (samples, background rows, tokens): several samples per chunk."""
    from deepshap.frameworks.pytorch import deep

    chunks = []
    attributions = deep._attributions
    monkeypatch.setattr(deep, "_attributions", lambda *args: chunks.append(args[-1]) or attributions(*args))
    _same_as_one_sample_per_pass(
        TokenwiseMLP().eval(), tensor_data((6, 5, 4), 1), tensor_data((4, 5, 4), 2), 24
    )
    assert chunks == [4, 1]  # 4 samples by 6 background rows per pass, no fallback; then 1 by 6


class SeqFirstTokenwise(TokenwiseMLP):
    """The same token-wise MLP on (tokens * batch, features) rows: the batch is the inner factor."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, tokens, features = x.shape
        h = self.inner(x.transpose(0, 1).reshape(tokens * n, features)).reshape(tokens, n, -1)
        return self.out(h.mean(0))


class HeadsFirstMaskedPooling(nn.Module):
    """Per-head softmax over tokens on (heads * batch, tokens) rows, padding masked with ``fill``; the
    scores are shifted by ``offset``, which the softmax ignores."""

    def __init__(self, fill: float = float("-inf"), offset: float = 0.0) -> None:
        super().__init__()
        self.fill, self.offset = fill, offset
        self.score, self.readout = nn.Linear(4, 2), nn.Linear(6, 3)
        self.register_buffer("pad", torch.tensor([False, False, False, False, True, True]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, tokens, _ = x.shape
        scores = self.score(x).permute(2, 0, 1).reshape(2 * n, tokens) + self.offset
        scores = scores.masked_fill(self.pad, self.fill)
        return self.readout(torch.softmax(scores, -1).reshape(2, n, tokens).mean(0))


@pytest.mark.parametrize(
    ("model", "X"),
    [
        # samples constant along the tokens: row 0 and row m-1 of a wrong split hold equal values
        (SeqFirstTokenwise(), tensor_data((2, 1, 4), 2).expand(2, 4, 4).contiguous()),
        # -inf in the compared values made the gap NaN, which passed any split
        (HeadsFirstMaskedPooling(), tensor_data((3, 6, 4), 2)),
        # a finite mask (-1e9) set the tolerance of the whole comparison, which passed a wrong split
        (HeadsFirstMaskedPooling(-1e9), tensor_data((3, 6, 4), 2)),
        # so did a large offset shared by all the values (1e4 + scores; float64 keeps the scores exact)
        (
            nn.Sequential(Lambda(torch.Tensor.double), HeadsFirstMaskedPooling(offset=1e4).double()),
            tensor_data((3, 6, 4), 2),
        ),
    ],
    ids=["constant_along_tokens", "minus_inf_mask", "minus_1e9_mask", "offset_1e4"],
)
def test_a_wrong_split_of_the_batch_is_not_taken_for_a_right_one(model, X) -> None:
    """Where the real samples cannot tell the split, made-up ones do: the values of one sample per pass."""
    torch.manual_seed(0)
    _same_as_one_sample_per_pass(model, tensor_data((2, *X.shape[1:]), 1), X, 100)


class RowLoop(nn.Module):
    """Rows of the batch one at a time (independent rows, no data-dependent control flow)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a, self.fc = nn.Linear(6, 8), nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.stack([torch.tanh(self.a(row)) for row in x]))


def test_a_model_that_loops_over_its_rows_is_explained_one_sample_at_a_time() -> None:
    """More rows in the pass on (sample, reference) pairs mean more calls than in the references' pass;
    it was taken for data-dependent control flow. One sample per chunk gives both passes the same rows."""
    bg, X = tensor_data((8, 6), 1), tensor_data((3, 6), 2)
    values = additive_values(RowLoop(), bg, X)[0]
    one_at_a_time = additive_values(RowLoop(), bg, X, batch_size=8)[0]
    np.testing.assert_allclose(values, one_at_a_time, rtol=1e-6, atol=1e-8)
