"""GANs: Algorithm 1 and the variants of the family, registered by name.

* :mod:`~scratchgan.gan.algorithm1` — :class:`GAN`, Algorithm 1 as printed;
* :mod:`~scratchgan.gan.simultaneous` — the authors' simultaneous update;
* :mod:`~scratchgan.gan.wgan` — WGAN's weight-clipped critic;
* :mod:`~scratchgan.gan.wgan_gp` — WGAN-GP's gradient penalty;
* :mod:`~scratchgan.gan.r1` — R1's penalty on real data;
* :mod:`~scratchgan.gan.infogan` — InfoGAN: noise and codes, Q's information term in both steps;
* :mod:`~scratchgan.gan.pix2pix` — pix2pix's paired translation (cGAN + λ·L1);
* :mod:`~scratchgan.gan.cgan` — the conditional GAN: G(z, y) and D(x, y);
* :mod:`~scratchgan.gan.priors` — noise priors ``p_z``;
* :mod:`~scratchgan.gan.batch` — what a minibatch carries;
* :mod:`~scratchgan.gan.registry` — ``name → variant``.
"""

from .algorithm1 import GAN  # noqa: F401
from .batch import Batch  # noqa: F401
from .cgan import ConditionalGAN  # noqa: F401
from .infogan import InfoGAN  # noqa: F401
from .pix2pix import Pix2Pix  # noqa: F401
from .priors import PRIORS, NoisePrior  # noqa: F401
from .registry import VARIANTS, get_variant, register  # noqa: F401
from .r1 import R1  # noqa: F401
from .simultaneous import Simultaneous  # noqa: F401
from .wgan import WGAN  # noqa: F401
from .wgan_gp import WGANGP  # noqa: F401
