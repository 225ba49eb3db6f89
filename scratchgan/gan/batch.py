"""What one minibatch carries: the data a variant needs, on the device."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Batch"]


@dataclass
class Batch:
    """One minibatch.

    Attributes
    ----------
    x : array (m, …)
        Real samples, the distribution G must learn (images, flattened or
        ``(m, C, H, W)``).
    labels : int array (m,), optional
        Class labels (a conditional GAN draws G(z, y) and D(x, y)).
    source : array (m, …), optional
        The paired input of image-to-image translation: G(source) should
        look like ``x`` (pix2pix).
    """

    x: Any
    labels: Any = None
    source: Any = None

    def __len__(self):
        return int(self.x.shape[0])
