"""compare(): one truth, several explainers, a table and a plot."""

import numpy as np
import pytest

from deepshap import metrics
from tests.helpers import games


def test_compare_ranks_exact_and_halved_explanations():
    weights = np.random.default_rng(2).normal(size=(16, 2))
    x, background = games.images(2, 3), games.images(4, 4)

    def exact(model, images, rows, outputs):
        values = games.linear_truth(weights, images, rows)
        return np.stack([values[i][..., outputs[i]] for i in range(len(images))])

    def halved(model, images, rows, outputs):
        return 0.5 * exact(model, images, rows, outputs)

    table = metrics.compare(
        games.linear(weights),
        x,
        background,
        explainers=[("exact", exact), ("halved", halved), "captum.deepliftshap", "deepshap.deep"],
        regions=metrics.grid(games.SHAPE, 2),
        outputs="top",
        max_permutations=4,
        fill=0.0,
        n_steps=4,
        show=False,
        progress=False,
    )
    rows = {row.name: row for row in table.rows}
    assert rows["exact"].error.relative_l1 == pytest.approx(0.0, abs=1e-5)
    assert rows["halved"].error.relative_l1 == pytest.approx(0.5, rel=1e-4)
    assert rows["exact"].insertion_auc >= rows["halved"].insertion_auc - 1e-9  # same order of pixels
    assert rows["captum.deepliftshap"].failure is not None and rows["deepshap.deep"].failure is not None
    top = games.linear(weights)(x).argmax(axis=1)
    assert table.truth.outputs[:, 0].tolist() == top.tolist()
    text = table.to_markdown()
    assert "| exact | 0.0%" in text and "failed" in text
    figure = table.plot(show=False)
    assert len(figure.axes) == 3


def test_unknown_explainer_is_refused():
    with pytest.raises(ValueError, match="choose from"):
        metrics.compare(
            games.product,
            games.images(1, 0),
            games.images(2, 1),
            explainers=["lime"],
            regions=2,
            max_permutations=2,
            show=False,
            progress=False,
        )


@pytest.mark.slow
def test_compare_on_a_torch_cnn_measures_deepshap_and_captum():
    torch = pytest.importorskip("torch")
    pytest.importorskip("captum")
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 6 * 6, 3),
        torch.nn.Softmax(dim=1),
    ).eval()
    rng = np.random.default_rng(0)
    x, background = (
        rng.uniform(size=(2, 1, 8, 8)).astype(np.float32),
        rng.uniform(size=(4, 1, 8, 8)).astype(np.float32),
    )
    table = metrics.compare(
        net,
        x,
        background,
        explainers=["deepshap.deep", "captum.deepliftshap", "deepshap.gradient"],
        regions=4,
        max_permutations=40,
        n_steps=8,
        show=False,
        progress=False,
    )
    rows = {row.name: row for row in table.rows}
    for name in ("deepshap.deep", "captum.deepliftshap", "deepshap.gradient"):
        assert rows[name].failure is None, rows[name].failure
        assert 0 <= rows[name].error.relative_l1 < 2 and rows[name].seconds > 0


def test_explainers_are_asked_for_the_top_outputs_only_when_that_covers_the_table():
    from deepshap.metrics._explainers import _selected

    images = np.zeros((2, 3, 3))
    every = np.arange(2 * 9 * 4, dtype=float).reshape(2, 3, 3, 4)  # four model outputs
    ranking = np.array([[2, 0, 1, 3], [1, 3, 0, 2]])
    asked = []

    def explain(ranked):
        asked.append(ranked)
        if ranked is None:
            return every
        return [np.stack([every[i][..., ranking[i, r]] for i in range(2)]) for r in range(ranked)], ranking[
            :, :ranked
        ]

    top = _selected(explain, images, ranking[:, :1])
    np.testing.assert_array_equal(top[..., 0], np.stack([every[0][..., 2], every[1][..., 1]]))
    assert asked == [1]
    other = _selected(explain, images, np.array([[3], [0]]))
    np.testing.assert_array_equal(other[..., 0], np.stack([every[0][..., 3], every[1][..., 0]]))
    assert asked == [1, 1, None]
