"""scratchgan: generative adversarial nets from scratch.

NumPy on the CPU, CuPy on the GPU, one code path; every gradient derived by
hand and checked by finite differences.

* :mod:`scratchgan.backend` — NumPy/CuPy;
* :mod:`scratchgan.nn` — the engine: modules, layers, containers, losses, optimisers, gradcheck;
* :mod:`scratchgan.gan` — Algorithm 1 and the registry of variants;
* :mod:`scratchgan.models` — model builders (the 2014 paper's MLP G and D);
* :mod:`scratchgan.presets` — named configurations;
* :mod:`scratchgan.training` — trainer, checkpoints, run lock;
* :mod:`scratchgan.data`, :mod:`scratchgan.metrics`, :mod:`scratchgan.plots`, :mod:`scratchgan.cli`.
"""

from . import backend, data, gan, models, nn, presets  # noqa: F401
from .backend import get_device  # noqa: F401

__version__ = "0.2.0"
