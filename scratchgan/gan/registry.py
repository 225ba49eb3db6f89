"""The registry of GAN variants: ``name → class``.

A variant is a subclass of :class:`scratchgan.gan.GAN` (Algorithm 1) that
overrides only the steps its paper changes, registered under a name that
presets and checkpoints use::

    @register("wgan")
    class WGAN(GAN): ...
"""

from __future__ import annotations

__all__ = ["VARIANTS", "register", "get_variant"]

#: name → variant class
VARIANTS: dict = {}


def register(name: str):
    """Class decorator: make the variant available as ``name``."""
    def decorate(cls):
        if name in VARIANTS:
            raise ValueError(f"variant {name!r} is already registered ({VARIANTS[name].__name__})")
        VARIANTS[name] = cls
        cls.variant = name
        return cls
    return decorate


def get_variant(name: str):
    """The variant class called ``name``."""
    if name not in VARIANTS:
        raise ValueError(f"unknown GAN variant {name!r}; choose one of {', '.join(sorted(VARIANTS))}")
    return VARIANTS[name]
