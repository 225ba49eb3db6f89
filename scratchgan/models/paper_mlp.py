"""The paper's MNIST generator and discriminator, as the authors' code built them.

Every number is from the authors' released configuration
(``goodfeli/adversarial`` ``mnist.yaml``, docs/paper.md §1–§3):

* **G**: z (100) → Linear 1200 → ReLU → Linear 1200 → ReLU → Linear 784 →
  Sigmoid; weights U(±0.05); hidden biases 0; output biases
  ``logit(mean pixel over the training set)``, clipped to ``[1e-7, 1 − 1e-7]``
  (docs/paper.md §1);
* **D**: Dropout(0.2) on the pixels → Maxout 240×5 → Dropout(0.5) → Maxout
  240×5 → Dropout(0.5) → Linear 1 (a logit; the sigmoid lives in the loss);
  weights U(±0.005), biases 0; no max-norm for MNIST (docs/paper.md §2, §3.3).

One difference from the code: each Maxout stores its columns piece-major,
pylearn2 unit-major — a fixed permutation of the columns, so the same
function and the same initial distribution
(:meth:`scratchgan.nn.Maxout.from_unit_major` converts).
"""

from __future__ import annotations

import numpy as np

from .. import nn
from ..nn import fast

__all__ = ["build", "build_generator", "build_discriminator", "pixel_logit_bias"]


def pixel_logit_bias(pixel_mean, eps=1e-7):
    """``logit(clip(pixel_mean, eps, 1 − eps))``, as pylearn2's
    ``init_sigmoid_bias_from_marginals`` (docs/paper.md §1): G's samples
    start at the average digit. Always-black pixels get about −16.1."""
    p = np.clip(np.asarray(pixel_mean, dtype=np.float64), eps, 1 - eps)
    return np.log(p) - np.log1p(-p)


def build_generator(n_out=784, *, noise_dim=100, g_hidden=(1200, 1200), g_irange=0.05, output_bias=0.0,
                    rng=None, dtype=np.float32, fast_layers=True):
    """G: ``noise_dim → ReLU g_hidden… → Sigmoid n_out``.

    Parameters: z (m, noise_dim). Returns: samples (m, n_out) in [0, 1].
    """
    L = fast if fast_layers else nn
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    layers, n_in = [], noise_dim
    for width in g_hidden:
        layers += [L.Linear(n_in, width, irange=g_irange, rng=rng, dtype=dtype), L.ReLU()]
        n_in = width
    layers += [L.Linear(n_in, n_out, irange=g_irange, bias=output_bias, rng=rng, dtype=dtype), L.Sigmoid()]
    return L.Sequential(layers)


def build_discriminator(n_in=784, *, d_units=240, d_pieces=5, d_layers=2, d_irange=0.005,
                        d_dropout=(0.2, 0.5, 0.5), rng=None, dtype=np.float32, fast_layers=True):
    """D: dropout before every layer, ``d_layers`` maxout layers, a linear logit.

    Parameters: x (m, n_in). Returns: logits (m, 1).
    """
    L = fast if fast_layers else nn
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    if len(d_dropout) != d_layers + 1:
        raise ValueError(f"d_dropout needs {d_layers + 1} probabilities (one before each layer), "
                         f"got {list(d_dropout)}")
    layers, width = [], n_in
    for i in range(d_layers):
        layers += [L.Dropout(d_dropout[i]), L.Maxout(width, d_units, d_pieces, irange=d_irange, rng=rng,
                                                     dtype=dtype)]
        width = d_units
    layers += [L.Dropout(d_dropout[-1]), L.Linear(width, 1, irange=d_irange, rng=rng, dtype=dtype)]
    return L.Sequential(layers)


def build(x_shape, *, noise_dim, pixel_mean=None, rng=None, fast_layers=True, g_hidden=(1200, 1200),
          g_irange=0.05, d_units=240, d_pieces=5, d_layers=2, d_irange=0.005, d_dropout=(0.2, 0.5, 0.5)):
    """``{"G": G, "D": D}`` for flat samples of ``x_shape = (d,)``.

    ``pixel_mean`` (d,), the training set's mean, sets G's output bias.
    """
    if len(x_shape) != 1:
        raise ValueError(f"the paper's MLP works on flat samples (d,), got sample shape {tuple(x_shape)}")
    d = int(x_shape[0])
    bias = 0.0 if pixel_mean is None else pixel_logit_bias(pixel_mean)
    G = build_generator(d, noise_dim=noise_dim, g_hidden=g_hidden, g_irange=g_irange, output_bias=bias,
                        rng=rng, fast_layers=fast_layers)
    D = build_discriminator(d, d_units=d_units, d_pieces=d_pieces, d_layers=d_layers, d_irange=d_irange,
                            d_dropout=d_dropout, rng=rng, fast_layers=fast_layers)
    return {"G": G, "D": D}


build.layout = "flat"
