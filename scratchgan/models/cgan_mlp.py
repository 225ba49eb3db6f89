"""Mirza & Osindero's MNIST networks (2014, arXiv 1411.1784, §4.1): G(z, y) and D(x, y).

The paper's text, layer by layer (docs/cgan.md §3), with the details it leaves
open filled in as the 2014 GAN's code did (docs/cgan.md §3.2 lists each)::

    G:  z (100, U[0, 1])  → Linear 200  → ReLU → Dropout 0.5 ─┐
        y (label)         → one-hot 10 → Linear 1000 → ReLU → Dropout 0.5 ─┤ concat 1200
        → Linear 1200 → ReLU → Dropout 0.5 → Linear 784 → Sigmoid          (samples in [0, 1])

    D:  x (784)           → Maxout 240 × 5 pieces → Dropout 0.5 ─┐
        y (label)         → one-hot 10 → Maxout 50 × 5 pieces → Dropout 0.5 ─┤ concat 290
        → Maxout 240 × 4 pieces → Dropout 0.5 → Linear 1                   (a logit: D = σ(a))

* G's label layer "y → ReLU 1000" is a Linear layer on the one-hot label,
  ``onehot(y)·W + b = W[y] + b``: a row lookup. It is written as an
  :class:`~scratchgan.nn.Embedding` ``E`` (``E[c]`` plays ``W[c] + b``; the
  same functions, no multiplications by zeros). Its backward adds the
  gradients of samples sharing a label into one row (docs/cgan.md §4).
* D's label layer is a Maxout on the one-hot rows (it needs its pieces).
* Dropout 0.5 ("applied to both the generator and discriminator") sits on the
  output of every hidden layer of both networks, none on the inputs: no
  pixels, no noise, no label is dropped (docs/cgan.md §3.2).
* Initial weights as the 2014 code's: G U(±0.05), D U(±0.005), biases 0, G's
  output bias the logit of the mean training pixel (docs/paper.md §1).

Samples are drawn in evaluation mode, G's dropout off; docs/cgan.md §3.3 says
what short runs showed about this G's use of z, y and its dropout masks.
"""

from __future__ import annotations

import numpy as np

from .. import nn
from ..nn import fast
from .conditioning import OneHot
from .paper_mlp import pixel_logit_bias

__all__ = ["build", "build_generator", "build_discriminator"]


def build_generator(n_out=784, *, noise_dim=100, n_classes=10, g_z_units=200, g_y_units=1000, g_units=1200,
                    g_irange=0.05, g_dropout=0.5, output_bias=0.0, rng=None, dtype=np.float32, fast_layers=True):
    """G(z, y): ``(z (m, noise_dim), labels (m,))`` → samples ``(m, n_out)`` in [0, 1]."""
    L = fast if fast_layers else nn
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    kw = dict(irange=g_irange, rng=rng, dtype=dtype)
    z_branch = L.Sequential([L.Linear(noise_dim, g_z_units, **kw), L.ReLU(), L.Dropout(g_dropout)])
    y_branch = L.Sequential([L.Embedding(n_classes, g_y_units, "uniform", **kw), L.ReLU(), L.Dropout(g_dropout)])
    return L.Sequential([
        L.Parallel([z_branch, y_branch]), L.Concat(),                      # (m, g_z_units + g_y_units)
        L.Linear(g_z_units + g_y_units, g_units, **kw), L.ReLU(), L.Dropout(g_dropout),
        L.Linear(g_units, n_out, bias=output_bias, **kw), L.Sigmoid(),
    ])


def build_discriminator(n_in=784, *, n_classes=10, d_x_units=240, d_x_pieces=5, d_y_units=50, d_y_pieces=5,
                        d_units=240, d_pieces=4, d_irange=0.005, d_dropout=0.5, rng=None, dtype=np.float32,
                        fast_layers=True):
    """D(x, y): ``(x (m, n_in), labels (m,))`` → logits ``(m, 1)``."""
    L = fast if fast_layers else nn
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    kw = dict(irange=d_irange, rng=rng, dtype=dtype)
    x_branch = L.Sequential([L.Maxout(n_in, d_x_units, d_x_pieces, **kw), L.Dropout(d_dropout)])
    y_branch = L.Sequential([OneHot(n_classes, dtype), L.Maxout(n_classes, d_y_units, d_y_pieces, **kw),
                             L.Dropout(d_dropout)])
    return L.Sequential([
        L.Parallel([x_branch, y_branch]), L.Concat(),                      # (m, d_x_units + d_y_units)
        L.Maxout(d_x_units + d_y_units, d_units, d_pieces, **kw), L.Dropout(d_dropout),
        L.Linear(d_units, 1, **kw),
    ])


def build(x_shape, *, noise_dim, pixel_mean=None, rng=None, fast_layers=True, n_classes=10, g_z_units=200,
          g_y_units=1000, g_units=1200, g_irange=0.05, d_x_units=240, d_x_pieces=5, d_y_units=50, d_y_pieces=5,
          d_units=240, d_pieces=4, d_irange=0.005, g_dropout=0.5, d_dropout=0.5):
    """``{"G": G, "D": D}`` for flat samples of ``x_shape = (d,)``, conditioned on ``n_classes`` labels.

    ``pixel_mean`` (d,), the training set's mean, sets G's output bias.
    """
    if len(x_shape) != 1:
        raise ValueError(f"the conditional GAN's MLP works on flat samples (d,), got sample shape {tuple(x_shape)}")
    d = int(x_shape[0])
    bias = 0.0 if pixel_mean is None else pixel_logit_bias(pixel_mean)
    G = build_generator(d, noise_dim=noise_dim, n_classes=n_classes, g_z_units=g_z_units, g_y_units=g_y_units,
                        g_units=g_units, g_irange=g_irange, g_dropout=g_dropout, output_bias=bias, rng=rng,
                        fast_layers=fast_layers)
    D = build_discriminator(d, n_classes=n_classes, d_x_units=d_x_units, d_x_pieces=d_x_pieces, d_y_units=d_y_units,
                            d_y_pieces=d_y_pieces, d_units=d_units, d_pieces=d_pieces, d_irange=d_irange,
                            d_dropout=d_dropout, rng=rng, fast_layers=fast_layers)
    return {"G": G, "D": D}


build.layout = "flat"
