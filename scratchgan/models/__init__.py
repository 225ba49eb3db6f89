"""Model builders, by name: each returns the variant's networks as ``{"G": …, "D": …}``.

* ``paper_mlp`` — the 2014 paper's MNIST G and D (:mod:`~scratchgan.models.paper_mlp`);
* ``dcgan`` — Radford et al.'s convolutional G and D at 28×28 (:mod:`~scratchgan.models.dcgan`);
* ``wgan_conv`` — the WGAN-GP authors' MNIST G and critic, no normalisation (:mod:`~scratchgan.models.wgan_conv`);
* ``infogan`` — InfoGAN's G, and D and Q on one shared trunk (:mod:`~scratchgan.models.infogan`);
* ``pix2pix`` — Isola et al.'s U-Net G and PatchGAN D at 32×32 (:mod:`~scratchgan.models.pix2pix`,
  :mod:`~scratchgan.models.unet`, :mod:`~scratchgan.models.patchgan`);
* ``cgan_mlp`` — Mirza & Osindero's conditional MNIST G(z, y) and D(x, y) (:mod:`~scratchgan.models.cgan_mlp`);
* ``cdcgan`` — the dcgan networks with the label beside every layer (:mod:`~scratchgan.models.cdcgan`);
* the judge classifier, which scores samples, is :mod:`~scratchgan.models.judge`.

A builder is called as ``build(x_shape, noise_dim=…, pixel_mean=…, rng=…,
fast_layers=…, **model_args)``; the preset's ``model_args`` must match its
keyword arguments exactly. ``build.layout`` says how it wants the data:
``"flat"`` (``(d,)`` vectors) or ``"image"`` (``(C, H, W)``).
"""

import numpy as np

from . import cdcgan, cgan_mlp, dcgan, infogan, paper_mlp, pix2pix, wgan_conv  # noqa: F401

__all__ = ["MODELS", "get_model", "sample_shape"]

#: name → builder
MODELS = {"paper_mlp": paper_mlp.build, "dcgan": dcgan.build, "cgan_mlp": cgan_mlp.build, "cdcgan": cdcgan.build,
          "wgan_conv": wgan_conv.build, "infogan": infogan.build, "pix2pix": pix2pix.build}


def get_model(name):
    """The builder called ``name``."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(sorted(MODELS))}")
    return MODELS[name]


def sample_shape(model, image_shape=(1, 28, 28)):
    """The per-sample shape the builder ``model`` wants for images of ``image_shape``."""
    layout = getattr(get_model(model), "layout", "flat")
    return tuple(image_shape) if layout == "image" else (int(np.prod(image_shape)),)
