"""scratchgan: Generative Adversarial Nets (Goodfellow et al., 2014) from scratch.

NumPy on the CPU, CuPy on the GPU, one code path; every gradient derived by
hand and checked by finite differences.
"""

from . import backend

__version__ = "0.1.0"
