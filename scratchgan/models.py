"""The paper's MNIST generator and discriminator, as the authors' code built them.

Every number here is from the authors' released configuration
(``goodfeli/adversarial`` ``mnist.yaml``, summarised with sources in
PAPER.md §0–§3):

* noise ``z``: 100 dimensions, uniform on ``[−√3, √3]`` (§1);
* **G**: Linear 100→1200, ReLU, Linear 1200→1200, ReLU, Linear 1200→784,
  Sigmoid; weights U(±0.05); hidden biases 0; output biases
  ``logit(mean pixel over the training set)`` clipped to ``[1e-7, 1 − 1e-7]`` (§1);
* **D**: Dropout(0.2) on the pixels, Maxout 784→240×5, Dropout(0.5),
  Maxout 240→240×5, Dropout(0.5), Linear 240→1 (a logit; the sigmoid lives in
  the loss); weights U(±0.005), biases 0; no max-norm for MNIST (§2, §3.3).
  One difference from the code: each Maxout stores its 1200 columns
  piece-major, pylearn2 unit-major — a fixed permutation of the columns, so
  the same function and the same initial distribution
  (:meth:`~scratchgan.layers.Maxout.from_unit_major` converts);
* momentum SGD, batch 100, lr 0.1 divided by 1.000004 after every update
  (floor 1e-6), momentum 0.5 → 0.7 linearly by epoch 250 (§3.4);
* non-saturating G loss, D loss scaled by 0.5, **simultaneous** D/G updates
  with k = 1 (§3.1–3.2).

Deviations from the paper's *text* (not its code) are listed in
:data:`PAPER_DEVIATIONS`; ``--update alternating --loss minimax`` gives
Algorithm 1 as printed (alternating updates, no 0.5 on D's loss, G descending
log(1 − D(G(z)))).
"""

from __future__ import annotations

import numpy as np

from .layers import Dropout, Linear, Maxout, ReLU, Sigmoid
from .network import Sequential

__all__ = ["PRESETS", "PAPER_DEVIATIONS", "build_generator", "build_discriminator", "pixel_logit_bias"]


PAPER_DEVIATIONS = (
    "D and G are updated simultaneously from one minibatch (the authors' code); Algorithm 1 alternates.",
    "G minimises -log D(G(z)) (non-saturating, the paper's Section 3 advice and the code), not log(1 - D(G(z))).",
    "D's loss carries a factor 0.5 (the code's 0.5*[BCE(real,1) + BCE(fake,0)]); Algorithm 1 has none.",
    "Noise is uniform on [-sqrt3, sqrt3] (the code); the paper's text does not give the prior.",
)

#: Named configurations. ``paper`` is the authors' MNIST model; ``small`` is a
#: narrow version of it for smoke tests and quick CPU demos.
PRESETS = {
    "paper": dict(
        noise_dim=100, prior="uniform-sqrt3", g_hidden=(1200, 1200), g_irange=0.05,
        d_units=240, d_pieces=5, d_layers=2, d_irange=0.005, d_dropout=(0.2, 0.5, 0.5),
        batch_size=100, lr=0.1, lr_decay=1.000004, min_lr=1e-6,
        momentum=0.5, final_momentum=0.7, momentum_saturate=250,
        loss="non-saturating", d_scale=0.5, update="simultaneous", k=1,
    ),
    "small": dict(
        noise_dim=32, prior="uniform-sqrt3", g_hidden=(256, 256), g_irange=0.05,
        d_units=64, d_pieces=3, d_layers=2, d_irange=0.005, d_dropout=(0.2, 0.5, 0.5),
        batch_size=100, lr=0.1, lr_decay=1.000004, min_lr=1e-6,
        momentum=0.5, final_momentum=0.7, momentum_saturate=250,
        loss="non-saturating", d_scale=0.5, update="simultaneous", k=1,
    ),
}


def pixel_logit_bias(train_images, eps=1e-7):
    """``logit(clip(mean pixel, eps, 1 − eps))`` per pixel, as pylearn2's
    ``init_sigmoid_bias_from_marginals`` (PAPER.md §1): G's samples start at
    the average digit. Always-black pixels get about −16.1."""
    p = np.clip(np.asarray(train_images, dtype=np.float64).mean(axis=0), eps, 1 - eps)
    return np.log(p) - np.log1p(-p)


def build_generator(n_out=784, *, noise_dim=100, g_hidden=(1200, 1200), g_irange=0.05,
                    output_bias=0.0, rng=None, dtype=np.float32, **_):
    """G: ``noise_dim → ReLU g_hidden… → Sigmoid n_out`` (the paper's MNIST G)."""
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    layers, n_in = [], noise_dim
    for width in g_hidden:
        layers += [Linear(n_in, width, irange=g_irange, rng=rng, dtype=dtype), ReLU()]
        n_in = width
    layers += [Linear(n_in, n_out, irange=g_irange, bias=output_bias, rng=rng, dtype=dtype), Sigmoid()]
    return Sequential(layers)


def build_discriminator(n_in=784, *, d_units=240, d_pieces=5, d_layers=2, d_irange=0.005,
                        d_dropout=(0.2, 0.5, 0.5), rng=None, dtype=np.float32, **_):
    """D: dropout before every layer, ``d_layers`` maxout layers, a linear logit."""
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    if len(d_dropout) != d_layers + 1:
        raise ValueError(f"d_dropout needs {d_layers + 1} probabilities, got {d_dropout!r}")
    layers, width = [], n_in
    for i in range(d_layers):
        layers += [Dropout(d_dropout[i]), Maxout(width, d_units, d_pieces, irange=d_irange, rng=rng, dtype=dtype)]
        width = d_units
    layers += [Dropout(d_dropout[-1]), Linear(width, 1, irange=d_irange, rng=rng, dtype=dtype)]
    return Sequential(layers)
