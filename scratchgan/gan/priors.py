"""Noise priors ``p_z(z)``, the generator's input distribution."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["NoisePrior", "PRIORS"]

PRIORS = ("uniform-sqrt3", "uniform", "unit-cube", "normal")


class NoisePrior:
    """The noise prior ``p_z(z)`` (the paper writes ``p_g(z)`` in Algorithm 1).

    * ``"uniform-sqrt3"``: U[−√3, √3] per dimension (zero mean, unit
      variance), what the authors' MNIST code used (docs/paper.md §1);
    * ``"uniform"``: U[−1, 1];
    * ``"unit-cube"``: U[0, 1], "uniform … within the unit hypercube", the
      conditional GAN paper's prior (docs/cgan.md §3);
    * ``"normal"``: N(0, 1).
    """

    def __init__(self, dim: int, kind: str = "uniform-sqrt3"):
        if kind not in PRIORS:
            raise ValueError(f"unknown noise prior {kind!r}; choose one of {', '.join(PRIORS)}")
        if int(dim) < 1:
            raise ValueError(f"noise dimension must be >= 1, got {dim!r}")
        self.dim, self.kind = int(dim), kind

    def sample(self, m: int, rng, dtype=np.float32):
        """``m`` noise vectors, shape ``(m, dim)``, drawn with ``rng`` (on its device)."""
        shape = (m, self.dim)
        dtype = np.dtype(dtype).type
        if self.kind == "normal":
            return rng.standard_normal(shape, dtype=dtype)
        u = rng.random(shape, dtype=dtype)  # U[0, 1)
        if self.kind == "unit-cube":
            return u
        half = math.sqrt(3.0) if self.kind == "uniform-sqrt3" else 1.0
        return u * dtype(2 * half) - dtype(half)

    def __repr__(self):
        return f"NoisePrior({self.dim}, {self.kind!r})"
