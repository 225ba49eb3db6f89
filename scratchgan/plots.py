"""Pictures: sample grids, training curves, the paper's Figure 2.

Everything draws on a fresh ``matplotlib.figure.Figure`` (no pyplot global
state), so it works headless and inside other programs.
"""

from __future__ import annotations

import math
import os

import numpy as np

from .backend import get_array_module, to_numpy
from .training.checkpoint import atomic_path

__all__ = ["image_grid", "save_grid", "plot_history", "nearest_neighbours", "figure2", "plot_modes", "CLASS_NAMES"]

#: what the judge's ten classes are called
CLASS_NAMES = {"mnist": [str(i) for i in range(10)],
               "fashion-mnist": ["T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker",
                                 "bag", "boot"]}


def _atomic_figure_save(fig, path, **kw):
    """Save a matplotlib figure atomically (see :mod:`scratchgan.training.checkpoint`)."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=os.path.splitext(path)[1][1:] or "png", **kw)


def image_grid(images, nrow=None, side=None, pad=1, pad_value=1.0):
    """Tile ``(n, side·side)`` images in ``[0, 1]`` into one 2-D array
    (``side`` defaults to the images' own: the last axis of ``(n, …, side,
    side)``, the square root of the length of flat ``(n, side·side)`` rows)."""
    images = np.asarray(to_numpy(images), dtype=np.float32)
    side = side or (images.shape[-1] if images.ndim >= 3 else math.isqrt(images.shape[-1]))
    images = images.reshape(-1, side, side)
    n = images.shape[0]
    ncol = nrow or int(math.ceil(math.sqrt(n)))
    nrows = int(math.ceil(n / ncol))
    H = nrows * side + (nrows + 1) * pad
    W = ncol * side + (ncol + 1) * pad
    grid = np.full((H, W), pad_value, dtype=np.float32)
    for idx in range(n):  # n is a display count (≤ a few hundred), not a batch loop
        r, c = divmod(idx, ncol)
        top, left = pad + r * (side + pad), pad + c * (side + pad)
        grid[top:top + side, left:left + side] = images[idx]
    return grid


def save_grid(images, path, nrow=None, side=None, title=None, scale=3):
    """Save a grid of images to ``path`` (PNG), atomically."""
    from matplotlib.figure import Figure

    grid = image_grid(images, nrow=nrow, side=side)
    h, w = grid.shape
    fig = Figure(figsize=(w * scale / 100, (h * scale + (40 if title else 0)) / 100), dpi=100)
    ax = fig.add_axes([0, 0, 1, h * scale / (h * scale + (40 if title else 0))])
    ax.imshow(np.clip(grid, 0, 1), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=10)
    _atomic_figure_save(fig, path)


def plot_history(rows, path, title="training"):
    """Two panels against iterations: the losses, and what D says.

    ``rows`` are dicts with ``step`` and any of ``d_loss, g_loss`` (and other
    keys ending in ``loss``), ``D_x, D_G_z`` (mean D(x), mean D(G(z))) or a
    critic's ``critic_real, critic_fake, wasserstein``, or, without a D, a
    translator's ``l1``. Keys starting with ``mi_`` (InfoGAN's
    mutual-information estimates, in nats) get a third panel.
    """
    from matplotlib.figure import Figure

    if not rows:
        return
    steps = np.array([r["step"] for r in rows])
    info = [k for k in rows[0] if k.startswith("mi_")]
    fig = Figure(figsize=(15 if info else 10, 4), dpi=100)
    a1, a2, *a3 = fig.subplots(1, 3 if info else 2)
    for key in info:
        a3[0].plot(steps, [r[key] for r in rows], label=key.replace("_", " "), lw=1)
    if info:
        a3[0].set_xlabel("iteration")
        a3[0].set_title("mutual information estimates (nats)")
        a3[0].legend()
    for key in [k for k in rows[0] if k.endswith("loss")]:
        a1.plot(steps, [r[key] for r in rows], label=key.replace("_", " "), lw=1)
    a1.set_xlabel("iteration")
    a1.set_title("losses")
    a1.legend()
    if "D_x" in rows[0]:
        for key, label in (("D_x", "mean D(x)"), ("D_G_z", "mean D(G(z))")):
            a2.plot(steps, [r[key] for r in rows], label=label, lw=1)
        a2.axhline(0.5, color="gray", ls=":", lw=1)
        a2.set_ylim(0, 1)
        a2.set_title("discriminator outputs")
    elif "wasserstein" in rows[0]:
        for key in ("critic_real", "critic_fake", "wasserstein", "fixed_train_wasserstein", "val_wasserstein"):
            if key in rows[0]:
                a2.plot(steps, [r[key] for r in rows], label=key.replace("_", " "), lw=1)
        a2.set_title("critic")
    elif "l1" in rows[0]:  # a translator trained without D (pix2pix's L1 alone)
        a2.plot(steps, [r["l1"] for r in rows], label="mean |G(x) - y|", lw=1)
        a2.set_title("L1 distance to the targets")
    a2.set_xlabel("iteration")
    if a2.lines:
        a2.legend()
    fig.suptitle(title)
    fig.tight_layout()
    _atomic_figure_save(fig, path)


def nearest_neighbours(queries, data, batch_size=2048):
    """Index of the nearest row of ``data`` to each query (squared pixel distance).

    Uses ``‖q − x‖² = ‖x‖² − 2 q·x + const`` so it is one matrix product per
    block of ``data``; runs on the arrays' backend.
    """
    xp = get_array_module(queries, data)
    q = xp.asarray(queries, dtype=xp.float32)
    best = xp.full(q.shape[0], xp.inf, dtype=xp.float32)
    arg = xp.zeros(q.shape[0], dtype=xp.int64)
    for start in range(0, data.shape[0], batch_size):
        block = xp.asarray(data[start:start + batch_size], dtype=xp.float32)
        d = (block * block).sum(axis=1)[None, :] - 2 * q @ block.T
        j = d.argmin(axis=1)
        v = xp.take_along_axis(d, j[:, None], axis=1)[:, 0]
        better = v < best
        best = xp.where(better, v, best)
        arg = xp.where(better, j + start, arg)
    return to_numpy(arg)


def figure2(samples, train_images, path, rows=4, cols=5):
    """The paper's Figure 2 layout (docs/paper.md §6): ``rows`` rows of ``cols``
    random samples; the last column is the *training* image nearest (in pixel
    distance) to the sample beside it, to show the model has not memorised."""
    samples = to_numpy(samples)[: rows * cols].reshape(rows, cols, -1)
    nn = nearest_neighbours(samples[:, -1], train_images)
    neighbours = to_numpy(train_images[get_array_module(train_images).asarray(nn)])
    tiles = np.concatenate([samples, neighbours[:, None, :]], axis=1).reshape(rows * (cols + 1), -1)
    from matplotlib.figure import Figure

    grid = image_grid(tiles, nrow=cols + 1)
    h, w = grid.shape
    fig = Figure(figsize=(w * 4 / 100, h * 4 / 100 + 0.4), dpi=100)
    ax = fig.add_axes([0, 0, 1, h * 4 / (h * 4 + 40)])
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    sep = (cols) * 29 + 0.5
    ax.axvline(sep, color="gold", lw=2)
    ax.set_axis_off()
    fig.suptitle("samples  |  nearest training image", fontsize=10)
    _atomic_figure_save(fig, path)


def plot_modes(histogram, path, dataset="mnist", title=None):
    """A bar plot of the judged class histogram, with the uniform share dashed."""
    from matplotlib.figure import Figure

    counts = np.asarray(histogram)
    fig = Figure(figsize=(6, 3), dpi=100)
    ax = fig.add_subplot()
    ax.bar(range(len(counts)), counts, color="C0")
    ax.axhline(counts.sum() / len(counts), color="gray", ls="--", lw=1, label="uniform")
    ax.set_xticks(range(len(counts)))
    ax.set_xticklabels(CLASS_NAMES.get(dataset, [str(i) for i in range(len(counts))]), fontsize=8)
    ax.set_ylabel("samples")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    _atomic_figure_save(fig, path)
