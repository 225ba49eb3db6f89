"""pix2pix's networks (Isola et al. 2017): the U-Net G and the PatchGAN D, at 32×32.

The builder the ``pix2pix`` presets name. G translates a source image into a
target image (:mod:`~scratchgan.models.unet`); D judges each patch of a
(source, image) pair (:mod:`~scratchgan.models.patchgan`). Both work on
[−1, 1], the authors' scale; the pix2pix variant converts the package's
[0, 1] images at its boundary (docs/pix2pix.md §1).
"""

from __future__ import annotations

from .patchgan import build_discriminator
from .unet import build_generator

__all__ = ["build"]


def build(x_shape, *, noise_dim=0, pixel_mean=None, rng=None, fast_layers=True, source_channels=1, ngf=32,
          ndf=32, n_layers=1, dropout_blocks=3, skips=True, test_dropout=True, std=0.02, slope=0.2):
    """``{"G": U-Net, "D": PatchGAN}`` for target images of ``x_shape = (C, side, side)``
    and sources of ``source_channels`` channels.

    ``noise_dim`` must be 0 (pix2pix's noise is dropout) and ``pixel_mean``
    is not used. ``skips=False`` builds the encoder–decoder baseline;
    ``n_layers`` sets D's patch (:func:`~scratchgan.models.patchgan.receptive_field`).
    """
    if len(x_shape) != 3 or x_shape[1] != x_shape[2]:
        raise ValueError(f"pix2pix translates square images (C, side, side), got sample shape {tuple(x_shape)}")
    if noise_dim:
        raise ValueError(f"pix2pix's G takes no noise vector (its noise is dropout): noise_dim must be 0, "
                         f"got {noise_dim}")
    c, side = int(x_shape[0]), int(x_shape[1])
    G = build_generator(in_channels=source_channels, out_channels=c, side=side, ngf=ngf, dropout_blocks=dropout_blocks,
                        skips=skips, test_dropout=test_dropout, std=std, slope=slope, rng=rng, fast_layers=fast_layers)
    D = build_discriminator(in_channels=source_channels + c, ndf=ndf, n_layers=n_layers, std=std, slope=slope, rng=rng,
                            fast_layers=fast_layers)
    return {"G": G, "D": D}


build.layout = "image"
