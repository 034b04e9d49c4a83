"""Tests for deepshap.plots.image (image_plot): every accepted input form, rendered to PNG."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from deepshap.plots import image, image_plot, red_transparent_blue  # noqa: E402

N, H, W = 3, 12, 10


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@dataclass
class DuckExplanation:
    """The attributes image_plot reads from an Explanation, nothing more."""

    values: Any
    data: Any = None
    output_names: Any = None


def _digits(n: int = N) -> np.ndarray:
    """n MNIST-like float images in [0, 1], (n, H, W, 1): a bright stroke on black."""
    x = np.zeros((n, H, W, 1), dtype=np.float32)
    for i in range(n):
        x[i, 2 : H - 2, 3 + i % 3, 0] = 1.0
        x[i, 2, 3 : W - 2, 0] = 0.6
    return x


def _attributions(k: int, shape=(N, H, W, 1), seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=shape) * (j + 1) for j in range(k)]


def _render(fig, tmp_path, name: str) -> None:
    """Save the figure as a PNG and check something non-empty was written."""
    path = tmp_path / f"{name}.png"
    fig.savefig(path, dpi=40)
    assert path.stat().st_size > 1000


def _panels(fig) -> list:
    """Panel axes in row-major order (the last axes is the colour bar)."""
    return fig.axes[:-1]


def _colorbar(fig):
    return fig.axes[-1]


def _map_limits(fig, first_map_col: int, n_cols: int) -> set[tuple[float, float]]:
    limits = set()
    for i, ax in enumerate(_panels(fig)):
        if i % n_cols >= first_map_col:
            limits.add(ax.images[-1].get_clim())
    return limits


def test_list_per_output_seed000(tmp_path):
    x = _digits()
    sv = _attributions(10)
    fig = image_plot(sv, x, labels=[f"class {j}" for j in range(10)], show=False)
    _render(fig, tmp_path, "list")
    assert len(_panels(fig)) == N * 11
    assert _colorbar(fig).get_xlabel() == "SHAP value"
    titles = [ax.get_title() for ax in _panels(fig)]
    assert titles[1:11] == [f"class {j}" for j in range(10)]
    assert all(t == "" for t in titles[11:])  # shared labels only on the first row
    ((lo, hi),) = _map_limits(fig, 1, 11)
    assert lo == -hi and hi > 0
    expected = np.percentile(np.abs(np.concatenate([v.ravel() for v in sv])), 99.9)
    assert hi == pytest.approx(expected)


def test_trailing_output_axis_gives_one_column_per_output(tmp_path):
    x = _digits()
    sv = np.stack(_attributions(4), -1)  # (N, H, W, 1, 4)
    fig = image(sv, x, show=False)
    _render(fig, tmp_path, "trailing")
    panels = _panels(fig)
    assert len(panels) == N * 5
    for row in range(N):
        for j in range(4):
            shown = panels[row * 5 + 1 + j].images[-1].get_array()
            np.testing.assert_allclose(shown, sv[row, ..., 0, j])


def test_trailing_output_axis_without_channel_axis_uses_pixels_shape():
    x = _digits()[..., 0]  # (N, H, W)
    sv = np.stack(_attributions(3, shape=(N, H, W)), -1)  # (N, H, W, 3): outputs, not channels
    fig = image(sv, x, show=False)
    assert len(_panels(fig)) == N * 4


@pytest.mark.parametrize("shape", [(N, H, W, 1), (N, H, W)])
def test_single_array_is_one_output(tmp_path, shape):
    sv = _attributions(1, shape=shape)[0]
    fig = image(sv, _digits(), show=False)
    _render(fig, tmp_path, f"single{len(shape)}")
    assert len(_panels(fig)) == N * 2
    np.testing.assert_allclose(_panels(fig)[1].images[-1].get_array(), sv.reshape(N, H, W)[0])


def test_rgb_channels_summed():
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(2, H, W, 3))
    sv = rng.normal(size=(2, H, W, 3))
    fig = image([sv], x, show=False)
    np.testing.assert_allclose(_panels(fig)[1].images[-1].get_array(), sv[0].sum(-1))
    np.testing.assert_allclose(_panels(fig)[0].images[0].get_array(), x[0])


def test_torch_channels_first(tmp_path):
    torch = pytest.importorskip("torch")

    x = _digits()
    sv = _attributions(2)
    sv_t = [torch.tensor(np.moveaxis(v, -1, 1), requires_grad=True) for v in sv]  # (N, 1, H, W)
    x_t = torch.tensor(np.moveaxis(x, -1, 1))
    fig = image(sv_t, x_t, labels=["a", "b"], show=False)
    _render(fig, tmp_path, "torch")
    panels = _panels(fig)
    assert len(panels) == N * 3
    np.testing.assert_allclose(panels[0].images[0].get_array(), x[0, ..., 0])
    np.testing.assert_allclose(panels[2].images[-1].get_array(), sv[1][0, ..., 0], rtol=1e-6)


def test_torch_rgb_channels_first_with_output_axis():
    torch = pytest.importorskip("torch")

    rng = np.random.default_rng(2)
    x = torch.tensor(rng.uniform(size=(2, 3, H, W)), dtype=torch.float32)
    sv = torch.tensor(rng.normal(size=(2, 3, H, W, 5)), dtype=torch.bfloat16)
    fig = image(sv, x, show=False)
    panels = _panels(fig)
    assert len(panels) == 2 * 6
    assert panels[0].images[0].get_array().shape == (H, W, 3)
    expected = sv.float().numpy()[1, ..., 4].sum(0)
    np.testing.assert_allclose(panels[6 + 5].images[-1].get_array(), expected, rtol=1e-6)


def test_tf_tensors_seed004(tmp_path):
    tf = pytest.importorskip("tensorflow")

    x = tf.expand_dims(tf.constant(_digits()[:1, ..., 0]), axis=-1)  # (1, H, W, 1) tf tensor
    sv = [tf.constant(v[:1]) for v in _attributions(10)]
    fig = image_plot(sv, x, show=False)
    _render(fig, tmp_path, "tf")
    assert len(_panels(fig)) == 11


def test_intermediate_layer_is_summed_and_stretched(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 255, size=(2, 56, 42, 3))
    layer = rng.normal(size=(2, 14, 21, 64, 3))  # an intermediate layer, trailing output axis
    fig = image(
        [layer[..., j] for j in range(3)], x, labels=np.array([["a", "b", "c"], ["d", "e", "f"]]), show=False
    )
    _render(fig, tmp_path, "intermediate")
    panels = _panels(fig)
    shown = panels[1].images[-1].get_array()
    assert shown.shape == (56, 42)
    summed = layer[0, ..., 0].sum(-1)
    np.testing.assert_allclose(shown[::4, ::2], summed)  # nearest stretch keeps each cell's value
    assert [ax.get_title() for ax in panels] == ["", "a", "b", "c", "", "d", "e", "f"]


def test_intermediate_layer_channels_first():
    rng = np.random.default_rng(4)
    x = rng.uniform(size=(1, 3, 56, 56))
    layer = rng.normal(size=(1, 64, 14, 14))
    fig = image(layer, x, show=False)
    shown = _panels(fig)[1].images[-1].get_array()
    assert shown.shape == (56, 56)
    np.testing.assert_allclose(shown[::4, ::4], layer[0].sum(0))


@pytest.mark.parametrize("channels_first", [False, True], ids=["keras (N,3,3,64)", "torch (N,64,3,3)"])
def test_a_3x3_layer_is_not_read_as_three_colour_channels(channels_first):
    rng = np.random.default_rng(5)
    x = rng.uniform(size=(2, 24, 24, 3))
    layer = np.zeros((2, 3, 3, 64))
    layer[:, 0, 0, :] = 1.0  # only the top-left cell
    fig = image(np.moveaxis(layer, -1, 1) if channels_first else layer, x, show=False)
    shown = _panels(fig)[1].images[-1].get_array()
    expected = np.zeros((24, 24))
    expected[:8, :8] = 64.0  # the cell stretched to an 8x8 square
    np.testing.assert_allclose(shown, expected)


def test_channels_first_pixels_with_four_channels_on_a_non_square_image():
    rng = np.random.default_rng(6)
    x = rng.uniform(size=(2, 4, 24, 20))  # (N, C, H, W): RGBA or multispectral
    sv = rng.normal(size=(2, 4, 24, 20))
    fig = image([sv], x, show=False)
    shown = _panels(fig)[1].images[-1].get_array()
    assert shown.shape == (24, 20)
    np.testing.assert_allclose(shown, sv[0].sum(0))


def test_a_stale_output_axis_of_a_sliced_shap_explanation_is_not_trusted():
    @dataclass
    class Sliced:  # shap's Explanation after sv[..., 0]: 4-D values that still claim output axis 4
        values: np.ndarray
        data: np.ndarray
        output_dims: tuple = (4,)

    rng = np.random.default_rng(7)
    sliced = Sliced(rng.normal(size=(2, 8, 8, 3)), rng.uniform(size=(2, 8, 8, 3)))
    fig = image(sliced, show=False)
    panels = _panels(fig)
    assert len(panels) == 4  # per image: the image and one map, not one map per colour channel
    np.testing.assert_allclose(panels[1].images[-1].get_array(), sliced.values[0].sum(-1))


def test_negated_image_seed002(tmp_path):
    x = _digits()
    fig = image(_attributions(2), -x, show=False)
    _render(fig, tmp_path, "negated")
    shown = np.asarray(_panels(fig)[0].images[0].get_array())
    assert shown.min() >= 0 and shown.max() <= 1
    ink = x[0, ..., 0] == 1.0
    background = x[0, ..., 0] == 0.0
    assert np.all(shown[background] == 1.0)  # -0 is the largest value: white background
    assert np.all(shown[ink] == 0.0)  # -1 is the smallest: black strokes


@pytest.mark.parametrize("dtype", [np.float64, np.uint8])
def test_0_255_images_are_not_white(tmp_path, dtype):
    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, size=(1, H, W, 3)).astype(dtype)
    fig = image(_attributions(1, shape=(1, H, W, 3))[0], x, show=False)
    _render(fig, tmp_path, f"photo_{np.dtype(dtype).name}")
    shown = np.asarray(_panels(fig)[0].images[0].get_array())
    np.testing.assert_allclose(shown, x[0] / 255.0)
    assert (shown < 0.99).mean() > 0.5


def test_unit_range_image_kept():
    x = _digits()
    fig = image(_attributions(1)[0], x, show=False)
    np.testing.assert_allclose(_panels(fig)[0].images[0].get_array(), x[0, ..., 0])


def test_no_pixel_values_has_no_image_column(tmp_path):
    sv = _attributions(3)
    fig = image(sv, None, labels=["a", "b", "c"], show=False)
    _render(fig, tmp_path, "nopixels")
    panels = _panels(fig)
    assert len(panels) == N * 3
    assert all(len(ax.images) == 1 for ax in panels)  # no greyscale underlay either
    assert [ax.get_title() for ax in panels[:3]] == ["a", "b", "c"]


def test_map_overlays_faint_greyscale_image():
    x = np.random.default_rng(6).uniform(size=(1, H, W, 3))
    fig = image(_attributions(1, shape=(1, H, W, 3))[0], x, show=False)
    under, top = _panels(fig)[1].images
    grey = x[0] @ np.array([0.2989, 0.5870, 0.1140])
    np.testing.assert_allclose(under.get_array(), grey)
    assert under.get_alpha() < 0.5


def test_explanation_with_per_row_output_names_seed001(tmp_path):
    rng = np.random.default_rng(7)
    data = rng.uniform(0, 255, size=(2, 16, 16, 3))
    values = rng.normal(size=(2, 16, 16, 3, 4))
    names = np.array([["egret", "crane", "heron", "flamingo"], ["speedboat", "fountain", "lifeboat", "plow"]])
    fig = image_plot(DuckExplanation(values, data, names), show=False)
    _render(fig, tmp_path, "explanation")
    panels = _panels(fig)
    assert len(panels) == 2 * 5
    assert [ax.get_title() for ax in panels] == ["", *names[0], "", *names[1]]
    shown = np.asarray(panels[0].images[0].get_array())
    np.testing.assert_allclose(shown, data[0] / 255.0)


def test_explanation_without_output_axis_and_row_slice():
    rng = np.random.default_rng(8)
    data = rng.uniform(size=(2, H, W, 1))
    fig = image(DuckExplanation(rng.normal(size=(2, H, W, 1)), data, None), show=False)
    assert len(_panels(fig)) == 2 * 2
    one_row = DuckExplanation(rng.normal(size=(H, W, 1, 3)), data[0], ["a", "b", "c"])
    fig = image(one_row, show=False)
    assert [ax.get_title() for ax in _panels(fig)] == ["", "a", "b", "c"]


def test_shap_explanation_is_accepted():
    shap = pytest.importorskip("shap")

    rng = np.random.default_rng(9)
    data = rng.uniform(size=(2, H, W, 1))
    expl = shap.Explanation(rng.normal(size=(2, H, W, 1, 3)), data=data, output_names=["x", "y", "z"])
    fig = image(expl, show=False)
    assert len(_panels(fig)) == 2 * 4


def test_deepshap_explanation_and_its_row_slice():
    import deepshap

    rng = np.random.default_rng(10)
    data = rng.uniform(size=(2, H, W, 3))
    names = np.array([list("abcd"), list("efgh")])
    expl = deepshap.Explanation(
        rng.normal(size=(2, H, W, 3, 4)), base_values=np.zeros((2, 4)), data=data, output_names=names
    )
    assert [ax.get_title() for ax in _panels(image(expl, show=False))] == ["", *"abcd", "", *"efgh"]
    assert [ax.get_title() for ax in _panels(image(expl[1], show=False))] == ["", *"efgh"]
    bare = deepshap.Explanation(rng.normal(size=(2, H, W, 3, 4)), data=data)  # output axis known from data
    assert len(_panels(image(bare, show=False))) == 2 * 5


def test_explanation_with_two_output_axes_is_refused():
    expl = DuckExplanation(np.zeros((1, H, W, 2, 3)), None, None)
    expl.output_dims = (3, 4)
    with pytest.raises(ValueError, match="2 output axes"):
        image(expl, show=False)


def test_true_labels_title_image_column():
    fig = image(_attributions(1)[0], _digits(), true_labels=["7", "2", "1"], show=False)
    assert [ax.get_title() for ax in _panels(fig)[::2]] == ["7", "2", "1"]


def test_single_output_labels_one_per_row():
    fig = image(_attributions(1)[0], _digits(), labels=["p=0.9", "p=0.8", "p=0.7"], show=False)
    assert [ax.get_title() for ax in _panels(fig)[1::2]] == ["p=0.9", "p=0.8", "p=0.7"]


def test_explicit_vmax_and_cmap():
    fig = image(_attributions(2), _digits(), vmax=0.5, cmap="RdBu_r", show=False)
    assert _map_limits(fig, 1, 3) == {(-0.5, 0.5)}
    assert _panels(fig)[1].images[-1].get_cmap().name == "RdBu_r"


def test_all_zero_attributions_still_draw(tmp_path):
    fig = image(np.zeros((N, H, W, 1)), _digits(), show=False)
    _render(fig, tmp_path, "zeros")
    ((lo, hi),) = _map_limits(fig, 1, 2)
    assert lo == -hi and hi > 0


def test_colormap_red_positive_blue_negative_transparent_zero():
    neg, mid, pos = red_transparent_blue(0.0), red_transparent_blue(0.5), red_transparent_blue(1.0)
    assert neg[2] > neg[0] and neg[3] == 1.0
    assert pos[0] > pos[2] and pos[3] == 1.0
    assert mid[3] < 0.01


def test_show_true_calls_plt_show(monkeypatch):
    calls = []
    monkeypatch.setattr(plt, "show", lambda *a, **k: calls.append(1))
    assert image(_attributions(1)[0], _digits(), show=True) is None
    assert calls == [1]
    image(_attributions(1)[0], _digits(), show=False)
    assert calls == [1]


@pytest.mark.parametrize(
    ("shap_values", "pixels", "kwargs", "message"),
    [
        (_attributions(2), _digits(2), {}, "explain 3 image"),
        ([np.zeros((N, 5))], None, {}, "image-shaped"),
        ([np.zeros((N, H, W, 1)), np.zeros((N, H + 1, W, 1))], None, {}, "one shape"),
        ([[np.zeros((N, H, W, 1))] * 2] * 3, None, {}, "several inputs"),
        ((np.zeros((N, H, W, 1, 2)), np.zeros((N, 2), dtype=np.int64)), None, {}, "ranked_output"),
        (_attributions(2), _digits(), {"labels": ["a", "b", "c"]}, "labels must be"),
        (_attributions(2), _digits(), {"true_labels": ["1"]}, "one entry per image"),
        (_attributions(2), None, {"true_labels": ["1", "2", "3"]}, "pass pixel_values"),
        (_attributions(2), _digits(), {"vmax": -1.0}, "vmax must be"),
        ([], None, {}, "empty list"),
    ],
)
def test_bad_inputs_raise_clear_errors(shap_values, pixels, kwargs, message):
    with pytest.raises(ValueError, match=message):
        image(shap_values, pixels, show=False, **kwargs)


def test_a_unit_range_image_that_overshoots_a_little_is_not_black():
    x = _digits() * 1.2  # [0, 1.2]: a [0, 1] image after some augmentation, not a 0..255 one
    fig = image(_attributions(1)[0], x, show=False)
    shown = np.asarray(_panels(fig)[0].images[0].get_array())
    np.testing.assert_allclose(shown, x[0, ..., 0] / x.max())


def test_true_labels_may_be_a_tensor():
    torch = pytest.importorskip("torch")

    fig = image(_attributions(1)[0], _digits(), true_labels=torch.tensor([7, 2, 1]), show=False)
    assert [ax.get_title() for ax in _panels(fig)[::2]] == ["7", "2", "1"]


def test_a_shown_figure_stays_current_for_savefig(tmp_path):
    """As in shap: after image_plot(..., show=True) on a non-interactive backend a script can save it."""
    plt.close("all")
    assert image(_attributions(1)[0], _digits(), show=True) is None
    assert len(plt.get_fignums()) == 1 and len(plt.gcf().axes) > 1
    plt.savefig(tmp_path / "plot.png")
    saved = plt.imread(tmp_path / "plot.png")
    assert saved[..., :3].std() > 0.05  # the drawing, not a blank canvas
