"""pix2pix's generator: a U-Net (Isola et al. 2017), scaled from 256×256 to 32×32.

An encoder halves the side with strided 4×4 convolutions down to 1×1; a
decoder doubles it back with transposed 4×4 convolutions; and every encoder
activation is *concatenated* to the decoder activation of the same side (the
skip connections), so detail that the bottleneck cannot carry reaches the
output directly (docs/pix2pix.md §2). At 32×32 with ``ngf = 32``::

    level   encoder (input → output)                 decoder (input → output)
    1       Conv → 32                     32² → 16²   ReLU, ConvT 64 → 1, Tanh    16² → 32²
    2       LReLU, Conv → 64, BN          16² →  8²   ReLU, ConvT 128 → 32, BN     8² → 16²
    3       LReLU, Conv → 128, BN          8² →  4²   ReLU, ConvT 256 → 64, BN,    4² →  8²  dropout
    4       LReLU, Conv → 256, BN          4² →  2²   ReLU, ConvT 512 → 128, BN,   2² →  4²  dropout
    5       LReLU, Conv → 256              2² →  1²   ReLU, ConvT 256 → 256, BN,   1² →  2²  dropout

Each decoder input below level 5 is ``concat[e_ℓ, d_ℓ]``: the encoder output
of its level beside the decoder output from below, twice the width. Built
recursively, level ℓ is ``down_ℓ → skip_concat(level ℓ+1) → up_ℓ``
(:func:`scratchgan.nn.skip_concat`), and the concatenation's backward
*splits* the gradient while the :class:`~scratchgan.nn.Fork` inside it
*adds* the skip's share to what comes back through the deeper levels.

As the authors' ``defineG_unet``: LeakyReLU 0.2 before every encoder
convolution but the first, ReLU before every transposed convolution,
batch normalisation on every block but the first encoder block, the
innermost (the 1×1 bottleneck) and the output, dropout 0.5 in the first
decoder blocks (three of eight there; here the three whose outputs are 2², 4²
and 8², the same sides as the authors' three), tanh output, weights
N(0, 0.02) and BN scales N(1, 0.02). Their convolutions carry no bias in
effect (their training loop zeroes every convolution bias before each step),
so ours have none.

**Noise as dropout** (docs/pix2pix.md §3). pix2pix has no z: its only noise
is dropout, "applied … at both training and test time". The dropout layers
here are :class:`NoiseDropout`, which stays on in evaluation mode, so a
translation depends on the seed (``test_dropout=False`` makes it plain
dropout). Batch normalisation uses its running statistics in evaluation mode;
the authors' test script keeps batch statistics, which at their batch size
of 1 is instance normalisation (docs/pix2pix.md §3 says why we do not).

With ``skips=False`` the same network has no skip connections: the paper's
"encoder-decoder" baseline (its decoder inputs are half as wide).
"""

from __future__ import annotations

import numpy as np

from .. import nn
from ..nn import fast

__all__ = ["NoiseDropout", "UNet", "build_generator", "widths"]


class NoiseDropout(nn.Module):
    """Dropout that stays on in evaluation mode: pix2pix's noise.

    Wraps a :class:`scratchgan.nn.Dropout` and always calls it with
    ``train=True``; backward is the wrapped layer's (the same mask).
    :meth:`~scratchgan.nn.Module.set_rng` reaches the wrapped layer.
    """

    def __init__(self, dropout):
        super().__init__()
        self.dropout = dropout

    def children(self):
        return [("dropout", self.dropout)]

    def forward(self, x, train=True):
        """Parameters: x (any shape). Returns: ``x · keep / (1 − p)``, a fresh mask also when ``train=False``."""
        self._cache = True
        return self.dropout.forward(x, train=True)

    def backward(self, dy, *, need_dx=True, param_grads=True):
        """The wrapped dropout's backward: ``dx = dy · keep / (1 − p)``."""
        self._cached()
        return self.dropout.backward(dy, need_dx=need_dx, param_grads=param_grads)

    def __repr__(self):
        return f"NoiseDropout({self.dropout.p})"


class UNet(nn.Sequential):
    """The generator: a :class:`~scratchgan.nn.Sequential` (the outermost
    level) that also records its per-sample ``input_shape`` ``(C, side,
    side)``, the shape of the source images it translates."""

    def __init__(self, layers, input_shape):
        super().__init__(layers)
        self.input_shape = tuple(int(s) for s in input_shape)


def widths(side, ngf=32, max_mult=8):
    """The encoder's output widths, one per level: ``ngf · min(2^ℓ, max_mult)``
    for ℓ = 0 … log₂(side) − 1 (64, 128, 256, 512, 512, … in the paper)."""
    depth = int(side).bit_length() - 1
    if side < 4 or 2 ** depth != side:
        raise ValueError(f"the U-Net halves the side down to 1: side must be a power of 2 >= 4, got {side}")
    return [ngf * min(2 ** i, max_mult) for i in range(depth)]


def build_generator(*, in_channels=1, out_channels=1, side=32, ngf=32, max_mult=8, dropout_blocks=3, p=0.5,
                    skips=True, test_dropout=True, std=0.02, slope=0.2, rng=None, dtype=np.float32,
                    fast_layers=True):
    """G: sources ``(m, in_channels, side, side)`` → ``(m, out_channels, side, side)`` in [−1, 1].

    Parameters
    ----------
    in_channels, out_channels : channels of the source and of the output
    side : a power of 2; there are log₂(side) levels (5 for 32, 8 for the paper's 256)
    ngf, max_mult : level ℓ has ``ngf · min(2^ℓ, max_mult)`` channels
    dropout_blocks : how many decoder blocks, from the innermost out, end in dropout ``p``
    skips : False builds the encoder–decoder baseline
    test_dropout : dropout stays on in evaluation mode (:class:`NoiseDropout`)
    std, slope : weights N(0, std²); LeakyReLU slope
    """
    L = fast if fast_layers else nn
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    w = widths(side, ngf, max_mult)
    depth = len(w)
    if not 0 <= dropout_blocks <= depth - 1:
        raise ValueError(f"dropout_blocks must be in 0..{depth - 1} (the decoder blocks below the output), "
                         f"got {dropout_blocks}")
    conv = dict(kernel_size=4, stride=2, padding=1, bias=False, init="normal", std=std, rng=rng, dtype=dtype)

    def bn(c):
        layer = L.BatchNorm2d(c, dtype=dtype)
        layer.params["gamma"][...] = rng.normal(1.0, std, c)   # the authors' N(1, 0.02) scales
        return layer

    def dropout():
        layer = L.Dropout(p)
        return NoiseDropout(layer) if test_dropout else layer

    def level(i):
        """Level ``i`` (0 = outermost): encoder block i, the levels below, decoder block i."""
        c_in = in_channels if i == 0 else w[i - 1]
        c_back = out_channels if i == 0 else w[i - 1]
        down = [L.Conv2d(c_in, w[i], **conv)] if i == 0 else [L.LeakyReLU(slope), L.Conv2d(c_in, w[i], **conv)]
        if 0 < i < depth - 1:
            down.append(bn(w[i]))
        if i == depth - 1:           # the bottleneck: nothing below
            middle, width = [], w[i]
        else:
            below = level(i + 1)
            middle, width = ([L.skip_concat(below)], 2 * w[i]) if skips else ([below], w[i])
        up = [L.ReLU(), L.ConvTranspose2d(width, c_back, **conv)]
        if i == 0:
            up.append(L.Tanh())
        else:
            up.append(bn(c_back))
            if i >= depth - dropout_blocks:
                up.append(dropout())
        layers = down + middle + up
        return UNet(layers, (in_channels, side, side)) if i == 0 else L.Sequential(layers)

    return level(0)
