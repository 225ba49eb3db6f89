"""Convolution and transposed convolution, as one matrix product each.

Images are ``(N, C, H, W)`` and weights follow PyTorch's conventions, so
models port both ways: ``Conv2d.params["W"]`` is ``(out, in, kh, kw)``,
``ConvTranspose2d.params["W"]`` is ``(in, out, kh, kw)``.

**im2col.** A convolution is a matrix product once every receptive field is
laid out as a row. Inside, the image is viewed *channels-last*,
``(N, H, W, C)``: a window of ``kh × kw`` pixels with all their channels is
then one row of ``kh·kw·C`` numbers, in memory order, and ::

    cols = im2col(x)              (N·OH·OW, kh·kw·C)     one strided view, one copy
    y    = cols @ W_mat + b       (N·OH·OW, out)         W_mat = W as (kh·kw·C, out)

**col2im** is the other direction: it *adds* each row's ``kh·kw·C`` numbers
back into the window it came from. Overlapping windows sum — that is exactly
the chain rule for a pixel that feeds several outputs. It runs as ``kh·kw``
strided additions over the whole batch (no per-pixel loop, no ``np.add.at``).

The transposed convolution is the convolution's adjoint: its forward pass is
the convolution's input gradient (``col2im``), and its input gradient is a
convolution (``im2col``). No zeros are inserted between input pixels.

Every array keeps the memory order the previous layer gave it (NumPy's
``order="K"``): a convolution's output is an ``(N, C, H, W)`` view of
channels-last memory, the element-wise layers after it keep that order, and
the next convolution's channels-last view of it is free. Both backends: the
views come from ``sliding_window_view``, which NumPy and CuPy share.
"""

from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from .layers import init_weight, positive_int
from .module import Module, check_shape

__all__ = ["Conv2d", "ConvTranspose2d", "conv_output_size", "im2col", "col2im"]


def _pair(name, v, minimum):
    a, b = (v, v) if isinstance(v, (int, np.integer)) else tuple(v)
    for t in (a, b):
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < minimum:
            raise ValueError(f"{name} must be an int >= {minimum} (or a pair of them), got {v!r}")
    return int(a), int(b)


def conv_output_size(size, k, s, p):
    """Output length of a convolution: ``⌊(size + 2p − k) / s⌋ + 1``."""
    return (size + 2 * p - k) // s + 1


def _sliding_window_view(xp, a, window, axis):
    if xp is np:
        return np.lib.stride_tricks.sliding_window_view(a, window, axis=axis)
    from cupy.lib.stride_tricks import sliding_window_view
    return sliding_window_view(a, window, axis=axis)


def im2col(x_nhwc, kh, kw, sh, sw):
    """Rows of receptive fields of a channels-last (already padded) image.

    Parameters: x_nhwc (N, Hp, Wp, C); kernel (kh, kw); stride (sh, sw).
    Returns: cols (N·OH·OW, kh·kw·C), row ``(n, i, j)`` holding the window whose
    top-left pixel is ``(i·sh, j·sw)``, in ``(kh, kw, C)`` order; and (OH, OW).
    """
    xp = get_array_module(x_nhwc)
    N, Hp, Wp, C = x_nhwc.shape
    oh, ow = (Hp - kh) // sh + 1, (Wp - kw) // sw + 1
    win = _sliding_window_view(xp, x_nhwc, (kh, kw), (1, 2))          # (N, Hp−kh+1, Wp−kw+1, C, kh, kw)
    win = win[:, : (oh - 1) * sh + 1: sh, : (ow - 1) * sw + 1: sw]     # (N, OH, OW, C, kh, kw)
    cols = xp.ascontiguousarray(win.transpose(0, 1, 2, 4, 5, 3))      # (N, OH, OW, kh, kw, C): the copy
    return cols.reshape(N * oh * ow, kh * kw * C), (oh, ow)


def col2im(cols, shape_nhwc, kh, kw, sh, sw):
    """The adjoint of :func:`im2col`: add every row back into its window.

    Parameters: cols (N·OH·OW, kh·kw·C); shape_nhwc = (N, Hp, Wp, C) of the
    padded image; kernel and stride as for im2col.
    Returns: (N, Hp, Wp, C), where each pixel holds the sum over every window
    that covers it.
    """
    xp = get_array_module(cols)
    N, Hp, Wp, C = shape_nhwc
    oh, ow = (Hp - kh) // sh + 1, (Wp - kw) // sw + 1
    cols = cols.reshape(N, oh, ow, kh, kw, C)
    out = xp.zeros(shape_nhwc, dtype=cols.dtype)
    for i in range(kh):            # kh·kw strided additions, each over the whole batch
        for j in range(kw):
            out[:, i: i + (oh - 1) * sh + 1: sh, j: j + (ow - 1) * sw + 1: sw, :] += cols[:, :, :, i, j, :]
    return out


def _pad_nhwc(x_nhwc, ph, pw):
    """Zero-pad the two spatial axes of a channels-last image (a copy only if needed)."""
    if ph == 0 and pw == 0:
        return x_nhwc
    xp = get_array_module(x_nhwc)
    N, H, W, C = x_nhwc.shape
    out = xp.zeros((N, H + 2 * ph, W + 2 * pw, C), dtype=x_nhwc.dtype)
    out[:, ph: ph + H, pw: pw + W, :] = x_nhwc
    return out


class _ConvBase(Module):
    def _init(self, shape, fan_in, fan_out, n_bias, bias, init, irange, std, rng, dtype):
        W = init_weight(shape, init, fan_in=fan_in, fan_out=fan_out, irange=irange, std=std, rng=rng,
                        dtype=dtype)
        self.params = {"W": W}
        self.grads = {"W": np.zeros_like(W)}
        if bias:
            self.params["b"] = np.zeros(n_bias, dtype=dtype)
            self.grads["b"] = np.zeros(n_bias, dtype=dtype)

    def _col2im(self, rows, shape_nhwc):
        """``col2im(rows · W_matᵀ)``: each row's ``kh·kw·C`` products added back
        into its window — Conv2d's input gradient, ConvTranspose2d's forward pass.
        Parameters: rows (N·OH·OW, A); shape_nhwc (N, Hp, Wp, C). Returns (N, Hp, Wp, C).
        (:mod:`scratchgan.nn.fast` computes the same sums one kernel tap at a time.)"""
        return col2im(rows @ self._w_mat().T, shape_nhwc, *self.kernel_size, *self.stride)

    def _add_bias_grad(self, dy_mat):
        if "b" in self.params:
            self.grads["b"] += dy_mat.sum(axis=0)


class Conv2d(_ConvBase):
    """2-D convolution (cross-correlation, as PyTorch's ``Conv2d``)::

        y[n, o, i, j] = b[o] + Σ_{c, u, v} W[o, c, u, v] · xpad[n, c, i·s + u, j·s + v]

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size, stride, padding : int or (int, int)
    bias : bool
    init, irange, std, rng, dtype :
        See :func:`scratchgan.nn.layers.init_weight` (default: He normal,
        ``fan_in = in·kh·kw``; DCGAN uses ``init="normal", std=0.02``).

    ``params["W"]``: (out, in, kh, kw); ``params["b"]``: (out,).
    Input (N, in, H, W) → output (N, out, OH, OW) with
    ``OH = ⌊(H + 2p − kh)/s⌋ + 1``.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, init="he", *,
                 irange=0.05, std=0.02, rng=None, dtype=np.float32):
        super().__init__()
        self.in_channels = positive_int("in_channels", in_channels)
        self.out_channels = positive_int("out_channels", out_channels)
        self.kernel_size = _pair("kernel_size", kernel_size, 1)
        self.stride = _pair("stride", stride, 1)
        self.padding = _pair("padding", padding, 0)
        kh, kw = self.kernel_size
        self._init((self.out_channels, self.in_channels, kh, kw), self.in_channels * kh * kw,
                   self.out_channels * kh * kw, self.out_channels, bias, init, irange, std, rng, dtype)

    def _w_mat(self):
        """W as the GEMM operand: (out, in, kh, kw) → (kh·kw·in, out)."""
        kh, kw = self.kernel_size
        return self.params["W"].transpose(2, 3, 1, 0).reshape(kh * kw * self.in_channels, self.out_channels)

    def forward(self, x, train=True):
        """Parameters: x (N, in, H, W). Returns: y (N, out, OH, OW).

        Caches the im2col rows (backward needs them for dW) and the input shape.
        """
        check_shape(repr(self), x, (self.in_channels, None, None))
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        N, _, H, W = x.shape
        if H + 2 * ph < kh or W + 2 * pw < kw:
            raise ValueError(f"{self!r}: input {H}×{W} (padded {H + 2 * ph}×{W + 2 * pw}) is smaller than "
                             f"the kernel {kh}×{kw}")
        xpad = _pad_nhwc(x.transpose(0, 2, 3, 1), ph, pw)               # (N, Hp, Wp, in)
        cols, (oh, ow) = im2col(xpad, kh, kw, sh, sw)                    # (N·OH·OW, kh·kw·in)
        y = cols @ self._w_mat()                                         # (N·OH·OW, out)
        if "b" in self.params:
            y += self.params["b"]
        self._cache = (cols, xpad.shape, x.shape, (oh, ow))
        return y.reshape(N, oh, ow, self.out_channels).transpose(0, 3, 1, 2)

    def backward(self, dy, *, need_dx=True, param_grads=True):
        """Gradients of ``y_mat = cols · W_mat + b`` (the im2col form).

        Parameters: dy (N, out, OH, OW). Returns: dx (N, in, H, W), or None.

        In matrix form the convolution is a Linear layer applied to the rows of
        ``cols``, so (as for :class:`~scratchgan.nn.Linear`)::

            dW_mat = colsᵀ · dy_mat          (kh·kw·in, out) → reshaped to (out, in, kh, kw)
            db     = Σ_rows dy_mat           (out,)
            dcols  = dy_mat · W_matᵀ         (N·OH·OW, kh·kw·in)

        and ``cols`` copied every input pixel into each window that covers it,
        so ∂L/∂x at a pixel is the *sum* of its copies' gradients:
        ``dx = col2im(dcols)`` (then the padding is cut off).
        """
        cols, pad_shape, x_shape, (oh, ow) = self._cached()
        N = x_shape[0]
        self._check_dy(dy, (N, self.out_channels, oh, ow))
        dy_mat = dy.transpose(0, 2, 3, 1).reshape(N * oh * ow, self.out_channels)
        (kh, kw), (ph, pw) = self.kernel_size, self.padding
        if param_grads:
            dW_mat = cols.T @ dy_mat                                     # (kh·kw·in, out)
            self.grads["W"] += dW_mat.reshape(kh, kw, self.in_channels, self.out_channels).transpose(3, 2, 0, 1)
            self._add_bias_grad(dy_mat)
        if not need_dx:
            return None
        dxpad = self._col2im(dy_mat, pad_shape)          # col2im(dy_mat · W_matᵀ): (N, Hp, Wp, in)
        H, W = x_shape[2:]
        return dxpad[:, ph: ph + H, pw: pw + W, :].transpose(0, 3, 1, 2)

    def output_shape(self, input_shape):
        c, h, w = input_shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return (self.out_channels, conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw))

    def __repr__(self):
        return (f"Conv2d({self.in_channels}, {self.out_channels}, k={self.kernel_size}, s={self.stride}, "
                f"p={self.padding})")


class ConvTranspose2d(_ConvBase):
    """Transposed convolution (PyTorch's ``ConvTranspose2d``): the adjoint of
    :class:`Conv2d` with the same ``W``, plus a bias.

    Every input pixel ``x[n, :, i, j]`` paints the kernel, weighted by its
    channels, onto the output window whose top-left corner is ``(i·s, j·s)``;
    overlapping paints add, and ``padding`` crops that many pixels off each
    border::

        y = crop_p( col2im( x_mat · W_matᵀ ) ) + b

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size, stride, padding, output_padding : int or (int, int)
        ``output_padding`` (< stride) adds rows and columns at the bottom and
        right, so that ``OH = (H − 1)·s − 2p + k + output_padding``.
    bias, init, irange, std, rng, dtype : as for :class:`Conv2d`
        (He normal with ``fan_in = in·kh·kw / s²``, the inputs that reach one
        output pixel on average).

    ``params["W"]``: (in, out, kh, kw); ``params["b"]``: (out,).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, bias=True,
                 init="he", *, irange=0.05, std=0.02, rng=None, dtype=np.float32):
        super().__init__()
        self.in_channels = positive_int("in_channels", in_channels)
        self.out_channels = positive_int("out_channels", out_channels)
        self.kernel_size = _pair("kernel_size", kernel_size, 1)
        self.stride = _pair("stride", stride, 1)
        self.padding = _pair("padding", padding, 0)
        self.output_padding = _pair("output_padding", output_padding, 0)
        if any(op >= s for op, s in zip(self.output_padding, self.stride)):
            raise ValueError(f"output_padding {self.output_padding} must be smaller than stride {self.stride}")
        kh, kw = self.kernel_size
        fan_in = max(1, self.in_channels * kh * kw // (self.stride[0] * self.stride[1]))
        self._init((self.in_channels, self.out_channels, kh, kw), fan_in, self.out_channels * kh * kw,
                   self.out_channels, bias, init, irange, std, rng, dtype)

    def _w_mat(self):
        """W as the GEMM operand: (in, out, kh, kw) → (kh·kw·out, in)."""
        kh, kw = self.kernel_size
        return self.params["W"].transpose(2, 3, 1, 0).reshape(kh * kw * self.out_channels, self.in_channels)

    def _canvas(self, H, W):
        """The uncropped output size ``(H − 1)·s + k + output_padding``."""
        (kh, kw), (sh, sw), (oph, opw) = self.kernel_size, self.stride, self.output_padding
        return (H - 1) * sh + kh + oph, (W - 1) * sw + kw + opw

    def forward(self, x, train=True):
        """Parameters: x (N, in, H, W). Returns: y (N, out, OH, OW),
        ``OH = (H − 1)·s − 2p + kh + output_padding``. Caches x (channels-last rows)."""
        check_shape(repr(self), x, (self.in_channels, None, None))
        N, _, H, W = x.shape
        ph, pw = self.padding
        HC, WC = self._canvas(H, W)
        OH, OW = HC - 2 * ph, WC - 2 * pw
        if OH < 1 or OW < 1:
            raise ValueError(f"{self!r}: input {H}×{W} gives an empty output ({OH}×{OW})")
        x_mat = x.transpose(0, 2, 3, 1).reshape(N * H * W, self.in_channels)
        canvas = self._col2im(x_mat, (N, HC, WC, self.out_channels))     # col2im(x_mat · W_matᵀ)
        y = canvas[:, ph: ph + OH, pw: pw + OW, :]                       # crop the padding
        if "b" in self.params:
            y = y + self.params["b"]
        self._cache = (x_mat, (N, H, W), (HC, WC))
        return y.transpose(0, 3, 1, 2)

    def backward(self, dy, *, need_dx=True, param_grads=True):
        """Gradients of ``y = crop(col2im(x_mat · W_matᵀ)) + b``.

        Parameters: dy (N, out, OH, OW). Returns: dx (N, in, H, W), or None.

        Cropping and col2im are adjoint to padding and im2col, so the gradient
        of the canvas is ``dy`` zero-padded back, and the gradient of the rows
        ``cols = x_mat · W_matᵀ`` is ``dcols = im2col(dy_padded)``. Then, as
        for a Linear layer ``cols = x_mat · W_matᵀ``::

            dx_mat = dcols · W_mat           (N·H·W, in)
            dW_mat = dcolsᵀ · x_mat          (kh·kw·out, in) → reshaped to (in, out, kh, kw)
            db     = Σ_{n,i,j} dy[n, :, i, j]
        """
        x_mat, (N, H, W), (HC, WC) = self._cached()
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        self._check_dy(dy, (N, self.out_channels, HC - 2 * ph, WC - 2 * pw))
        dy_nhwc = dy.transpose(0, 2, 3, 1)
        xp = get_array_module(dy)
        if ph or pw:
            canvas = xp.zeros((N, HC, WC, self.out_channels), dtype=dy.dtype)
            canvas[:, ph: HC - ph, pw: WC - pw, :] = dy_nhwc
        else:
            canvas = dy_nhwc
        dcols, _ = im2col(canvas, kh, kw, sh, sw)                          # (N·H·W, kh·kw·out)
        if param_grads:
            dW_mat = dcols.T @ x_mat                                     # (kh·kw·out, in)
            self.grads["W"] += dW_mat.reshape(kh, kw, self.out_channels, self.in_channels).transpose(3, 2, 0, 1)
            self._add_bias_grad(dy_nhwc.reshape(-1, self.out_channels))
        if not need_dx:
            return None
        return (dcols @ self._w_mat()).reshape(N, H, W, self.in_channels).transpose(0, 3, 1, 2)

    def output_shape(self, input_shape):
        c, h, w = input_shape
        HC, WC = self._canvas(h, w)
        return (self.out_channels, HC - 2 * self.padding[0], WC - 2 * self.padding[1])

    def __repr__(self):
        extra = f", op={self.output_padding}" if any(self.output_padding) else ""
        return (f"ConvTranspose2d({self.in_channels}, {self.out_channels}, k={self.kernel_size}, "
                f"s={self.stride}, p={self.padding}{extra})")
