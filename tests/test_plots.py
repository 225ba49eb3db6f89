"""Tests for scratchgan.plots: sample grids, training curves, Figure 2."""

import os

import numpy as np
import pytest

from scratchgan import plots
from scratchgan.plots import figure2, image_grid, nearest_neighbours, plot_history, save_grid

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def brute_nn(queries, data):
    """Nearest row of ``data`` by explicit float64 squared distances."""
    q = np.asarray(queries, np.float64)
    x = np.asarray(data, np.float64)
    return ((q[:, None, :] - x[None, :, :]) ** 2).sum(-1).argmin(axis=1)


def no_temp_files(directory):
    return not [p for p in os.listdir(directory) if p.startswith(".tmp")]


# --------------------------------------------------------------------------
# image_grid
# --------------------------------------------------------------------------

def test_image_grid_shape_and_placement():
    side, pad, n, ncol = 2, 1, 5, 3
    images = np.stack([np.full(side * side, (i + 1) / 10) for i in range(n)])
    grid = image_grid(images, nrow=ncol, side=side, pad=pad, pad_value=-1.0)
    # 2 rows of 3 tiles: (2·2 + 3·1) x (3·2 + 4·1)
    assert grid.shape == (7, 10) and grid.dtype == np.float32
    for i in range(n):
        r, c = divmod(i, ncol)
        top, left = pad + r * (side + pad), pad + c * (side + pad)
        np.testing.assert_array_equal(grid[top:top + side, left:left + side],
                                      np.float32((i + 1) / 10))
    # the sixth slot is empty (padding), and so are all separators
    np.testing.assert_array_equal(grid[4:6, 7:9], -1.0)
    assert (grid[0] == -1).all() and (grid[:, 0] == -1).all() and (grid[3] == -1).all()
    assert (grid == -1).sum() == grid.size - n * side * side


def test_image_grid_keeps_pixel_order():
    # row-major reshaping: pixel k of an image lands at (k // side, k % side)
    side = 4
    img = np.arange(side * side, dtype=np.float32) / 100
    grid = image_grid(img[None], side=side, pad=1)
    np.testing.assert_array_equal(grid[1:5, 1:5], img.reshape(side, side))


def test_image_grid_default_is_square():
    grid = image_grid(np.zeros((100, 784), np.float32))
    assert grid.shape == (10 * 28 + 11, 10 * 28 + 11)
    grid = image_grid(np.zeros((10, 784), np.float32))  # ceil(sqrt(10)) = 4 columns, 3 rows
    assert grid.shape == (3 * 28 + 4, 4 * 28 + 5)


# --------------------------------------------------------------------------
# save_grid, plot_history
# --------------------------------------------------------------------------

def test_save_grid_writes_png(tmp_path):
    from matplotlib.image import imread

    path = tmp_path / "sub" / "grid.png"
    x = np.random.default_rng(0).random((4, 784), dtype=np.float32)
    save_grid(x, str(path), nrow=2, scale=3)
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    img = imread(str(path))
    side = 2 * 28 + 3  # 59 pixels of grid, each drawn 3x3
    assert img.shape[:2] == (3 * side, 3 * side)
    assert no_temp_files(path.parent)
    save_grid(x, str(tmp_path / "titled.png"), title="epoch 1")
    assert (tmp_path / "titled.png").read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize("kind", ["gan", "critic"])
def test_plot_history(tmp_path, kind):
    """The trainer's rows: losses and mean D(x), D(G(z)) (``D_x``, ``D_G_z``),
    or a WGAN critic's outputs; both panels get labelled curves (matplotlib
    warns about an empty legend otherwise, which is an error here)."""
    import warnings

    if kind == "gan":
        extra = lambda t: {"D_x": 0.5 + t / 1000, "D_G_z": 0.5 - t / 1000}  # noqa: E731
    else:
        extra = lambda t: {"critic_real": t / 100, "critic_fake": -t / 100, "wasserstein": t / 50}  # noqa: E731
    rows = [{"step": t, "d_loss": 0.69 - t / 1000, "g_loss": 0.69 + t / 1000, **extra(t),
             "d_grad_norm": 1.0, "g_grad_norm": 2.0} for t in range(0, 100, 10)]
    path = tmp_path / "history.png"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plot_history(rows, str(path), title="test")
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert no_temp_files(tmp_path)
    # no rows: nothing to draw, no file
    plot_history([], str(tmp_path / "empty.png"))
    assert not (tmp_path / "empty.png").exists()


# --------------------------------------------------------------------------
# nearest_neighbours
# --------------------------------------------------------------------------

def test_nearest_neighbours_constructed():
    data = np.zeros((6, 4), np.float32)
    data[1] = 1.0
    data[2, 0] = 3.0
    data[3] = [0, 0, 2, 2]
    data[4] = 0.5
    data[5, 3] = -2.0
    queries = np.array([[0.9, 1.1, 1.0, 0.8],     # -> 1
                        [2.6, 0.0, 0.0, 0.0],     # -> 2
                        [0.1, 0.0, 1.9, 2.2],     # -> 3
                        [0.0, 0.0, 0.0, -1.5],    # -> 5 (in the last block below)
                        [0.4, 0.6, 0.5, 0.45]],   # -> 4
                       np.float32)
    expected = [1, 2, 3, 5, 4]
    for bs in (1, 2, 4, 2048):  # block boundaries must not matter
        np.testing.assert_array_equal(nearest_neighbours(queries, data, batch_size=bs), expected)


@pytest.mark.parametrize("batch_size", [7, 64, 2048])
def test_nearest_neighbours_matches_brute_force(batch_size):
    rng = np.random.default_rng(5)
    data = rng.random((150, 784), dtype=np.float32)
    queries = rng.random((12, 784), dtype=np.float32)
    queries[:4] = data[[140, 3, 77, 7]] + 0.01 * rng.standard_normal((4, 784)).astype(np.float32)
    got = nearest_neighbours(queries, data, batch_size=batch_size)
    np.testing.assert_array_equal(got, brute_nn(queries, data))
    np.testing.assert_array_equal(got[:4], [140, 3, 77, 7])


# --------------------------------------------------------------------------
# figure2
# --------------------------------------------------------------------------

def test_figure2_layout_and_neighbours(tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    train = rng.random((60, 784), dtype=np.float32)
    samples = rng.random((25, 784), dtype=np.float32)  # only the first 20 are used
    targets = [13, 0, 59, 31]
    for r, t in enumerate(targets):  # the 5th sample of row r is close to train[t]
        samples[5 * r + 4] = np.clip(train[t] + 0.05 * rng.standard_normal(784), 0, 1)
    samples[3] = train[20]  # an exact copy in another column must not be taken

    captured = {}
    real_grid = plots.image_grid

    def spy(tiles, nrow=None, **kw):
        captured["tiles"], captured["nrow"] = np.array(tiles), nrow
        return real_grid(tiles, nrow=nrow, **kw)

    monkeypatch.setattr(plots, "image_grid", spy)
    path = tmp_path / "fig2.png"
    figure2(samples, train, str(path))
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert no_temp_files(tmp_path)

    tiles = captured["tiles"].reshape(4, 6, 784)
    assert captured["nrow"] == 6  # 5 samples and the neighbour per row
    for r in range(4):
        np.testing.assert_array_equal(tiles[r, :5], samples[5 * r:5 * r + 5])
        np.testing.assert_array_equal(tiles[r, 5], train[targets[r]])
    assert brute_nn(samples[4:20:5], train).tolist() == targets
