"""Model builders, by name: each returns the variant's networks as ``{"G": …, "D": …}``.

* ``paper_mlp`` — the 2014 paper's MNIST G and D (:mod:`~scratchgan.models.paper_mlp`).

A builder is called as ``build(x_shape, noise_dim=…, pixel_mean=…, rng=…,
fast_layers=…, **model_args)``; the preset's ``model_args`` must match its
keyword arguments exactly.
"""

from . import paper_mlp  # noqa: F401

__all__ = ["MODELS", "get_model"]

#: name → builder
MODELS = {"paper_mlp": paper_mlp.build}


def get_model(name):
    """The builder called ``name``."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(sorted(MODELS))}")
    return MODELS[name]
