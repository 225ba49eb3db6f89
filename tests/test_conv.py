"""Conv2d and ConvTranspose2d: finite differences, the adjoint identity, PyTorch's conventions.

Every gradient is checked against centred finite differences of the layer's
own forward pass in float64 (relative error < 1e-6) over Hypothesis-drawn
strides 1–3, kernels 1–5, paddings 0–2, odd and even image sizes, 1–4
channels and batches of 1–4. The transposed convolution must be the
convolution's adjoint for the same ``W``. When PyTorch is installed, both
layers must equal ``torch.nn.functional.conv2d`` / ``conv_transpose2d`` for the
same weights (an optional check of the conventions: weight layout, padding,
output padding).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

from helpers import assert_grads_ok, on, record_grad_errors, to_host, to_xp
from scratchgan import nn
from scratchgan.nn.conv import col2im, conv_output_size, im2col
from scratchgan.nn.gradcheck import check_module

F64 = np.float64


def make(xp, cls, *args, seed=0, **kw):
    layer = cls(*args, init="normal", std=1.0, rng=seed, dtype=F64, **kw)
    if "b" in layer.params:
        layer.params["b"][...] = np.random.default_rng(seed + 1).standard_normal(layer.params["b"].shape)
    return on(xp, layer)


conv_cases = st.fixed_dictionaries({
    "cin": st.integers(1, 4), "cout": st.integers(1, 4), "k": st.integers(1, 5), "s": st.integers(1, 3),
    "p": st.integers(0, 2), "h": st.integers(1, 9), "w": st.integers(1, 9), "n": st.integers(1, 4),
    "bias": st.booleans(), "seed": st.integers(0, 2**31)})


@given(c=conv_cases)
def test_conv2d_gradients(xp, c):
    assume(c["h"] + 2 * c["p"] >= c["k"] and c["w"] + 2 * c["p"] >= c["k"])
    layer = make(xp, nn.Conv2d, c["cin"], c["cout"], c["k"], c["s"], c["p"], bias=c["bias"], seed=c["seed"])
    x = to_xp(xp, np.random.default_rng(c["seed"]).standard_normal((c["n"], c["cin"], c["h"], c["w"])))
    assert_grads_ok(check_module(layer, x))


@given(c=conv_cases, op=st.integers(0, 2))
def test_conv_transpose2d_gradients(xp, c, op):
    op = min(op, c["s"] - 1)
    out_h = (c["h"] - 1) * c["s"] - 2 * c["p"] + c["k"] + op
    out_w = (c["w"] - 1) * c["s"] - 2 * c["p"] + c["k"] + op
    assume(out_h >= 1 and out_w >= 1)
    layer = make(xp, nn.ConvTranspose2d, c["cin"], c["cout"], c["k"], c["s"], c["p"], output_padding=op,
                 bias=c["bias"], seed=c["seed"])
    x = to_xp(xp, np.random.default_rng(c["seed"]).standard_normal((c["n"], c["cin"], c["h"], c["w"])))
    y = layer.forward(x)
    assert y.shape == (c["n"], c["cout"], out_h, out_w)
    assert_grads_ok(check_module(layer, x))


@given(c=conv_cases)
def test_transposed_convolution_is_the_adjoint(xp, c):
    """⟨conv(x), y⟩ = ⟨x, convT(y)⟩ for the same W (no bias): ConvTranspose2d
    is the convolution's transpose, not merely some upsampling."""
    assume(c["h"] + 2 * c["p"] >= c["k"] and c["w"] + 2 * c["p"] >= c["k"])
    conv = make(xp, nn.Conv2d, c["cin"], c["cout"], c["k"], c["s"], c["p"], bias=False, seed=c["seed"])
    oh = conv_output_size(c["h"], c["k"], c["s"], c["p"])
    ow = conv_output_size(c["w"], c["k"], c["s"], c["p"])
    # the output padding that makes convT(y) the size of x
    oph = c["h"] - ((oh - 1) * c["s"] - 2 * c["p"] + c["k"])
    opw = c["w"] - ((ow - 1) * c["s"] - 2 * c["p"] + c["k"])
    assume(0 <= oph < c["s"] and 0 <= opw < c["s"])
    convT = make(xp, nn.ConvTranspose2d, c["cout"], c["cin"], c["k"], c["s"], c["p"], output_padding=(oph, opw),
                 bias=False, seed=c["seed"])
    convT.params["W"][...] = conv.params["W"]  # (out, in, kh, kw) is convT's (in, out, kh, kw)
    rs = np.random.default_rng(c["seed"] + 7)
    x = to_xp(xp, rs.standard_normal((c["n"], c["cin"], c["h"], c["w"])))
    y = to_xp(xp, rs.standard_normal((c["n"], c["cout"], oh, ow)))
    lhs, rhs = float((conv.forward(x) * y).sum()), float((x * convT.forward(y)).sum())
    residual = abs(lhs - rhs) / max(1e-12, abs(lhs) + abs(rhs))
    record_grad_errors(residual, label="adjoint identity")
    assert residual < 1e-12


def test_col2im_adds_overlapping_windows(xp):
    """A 3×3 kernel at stride 1 covers a centre pixel 9 times: col2im of all
    ones counts the windows over every pixel (adding, not overwriting)."""
    cols = to_xp(xp, np.ones((1 * 3 * 3, 3 * 3 * 1)))
    out = to_host(col2im(cols, (1, 5, 5, 1), 3, 3, 1, 1))[0, :, :, 0]
    expected = np.outer([1, 2, 3, 2, 1], [1, 2, 3, 2, 1])
    np.testing.assert_array_equal(out, expected)


def test_im2col_rows_are_the_windows(xp):
    x = np.arange(2 * 5 * 6 * 3, dtype=F64).reshape(2, 5, 6, 3)
    cols, (oh, ow) = im2col(to_xp(xp, x), 2, 3, 2, 1)
    assert (oh, ow) == (2, 4)
    cols = to_host(cols).reshape(2, oh, ow, 2, 3, 3)
    for n, i, j in [(0, 0, 0), (1, 1, 3), (0, 1, 2)]:
        np.testing.assert_array_equal(cols[n, i, j], x[n, 2 * i: 2 * i + 2, j: j + 3, :])


def test_shapes_and_errors():
    conv = nn.Conv2d(3, 8, 4, stride=2, padding=1)
    assert conv.params["W"].shape == (8, 3, 4, 4) and conv.params["b"].shape == (8,)
    assert conv.output_shape((3, 28, 28)) == (8, 14, 14)
    convT = nn.ConvTranspose2d(8, 3, 4, stride=2, padding=1)
    assert convT.params["W"].shape == (8, 3, 4, 4)
    assert convT.output_shape((8, 7, 7)) == (3, 14, 14)
    assert nn.ConvTranspose2d(8, 3, 5, stride=2, padding=2, output_padding=1).output_shape((8, 7, 7)) == (3, 14, 14)
    with pytest.raises(ValueError, match=r"Conv2d\(3, 8.*expected input of shape \(batch, 3, \?, \?\), got \(2, 4, 9, 9\)"):
        conv.forward(np.zeros((2, 4, 9, 9), np.float32))
    with pytest.raises(ValueError, match="smaller than the kernel"):
        nn.Conv2d(1, 1, 5).forward(np.zeros((1, 1, 3, 3), np.float32))
    with pytest.raises(ValueError, match="output_padding"):
        nn.ConvTranspose2d(1, 1, 3, stride=2, output_padding=2)
    with pytest.raises(ValueError, match="stride"):
        nn.Conv2d(1, 1, 3, stride=0)
    y = conv.forward(np.zeros((2, 3, 9, 9), np.float32))
    with pytest.raises(ValueError, match="dy has shape"):
        conv.backward(np.zeros((2, 8, 5, 5), np.float32)[:, :, :4])


@pytest.mark.parametrize("cls", [nn.Conv2d, nn.ConvTranspose2d])
def test_float32_in_float32_out(cls):
    layer = cls(2, 3, 3, stride=2, padding=1, rng=0)
    x = np.random.default_rng(0).standard_normal((2, 2, 6, 6)).astype(np.float32)
    y = layer.forward(x)
    assert y.dtype == np.float32
    assert layer.backward(np.ones_like(y)).dtype == np.float32
    assert layer.grads["W"].dtype == np.float32


@pytest.mark.parametrize("k,s,p,op", [(4, 2, 1, 0), (5, 2, 2, 1), (3, 1, 1, 0), (3, 3, 0, 2), (1, 1, 0, 0)])
def test_equal_to_pytorch(k, s, p, op):
    """PyTorch's conventions, checked against PyTorch itself (skipped without it)."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rs = np.random.default_rng(0)
    x = rs.standard_normal((2, 3, 7, 8))
    conv = make(np, nn.Conv2d, 3, 4, k, s, p)
    ref = F.conv2d(torch.tensor(x), torch.tensor(conv.params["W"]), torch.tensor(conv.params["b"]), stride=s, padding=p)
    np.testing.assert_allclose(conv.forward(x), ref.numpy(), rtol=1e-12, atol=1e-12)
    convT = make(np, nn.ConvTranspose2d, 3, 4, k, s, p, output_padding=op)
    ref = F.conv_transpose2d(torch.tensor(x), torch.tensor(convT.params["W"]), torch.tensor(convT.params["b"]),
                             stride=s, padding=p, output_padding=op)
    np.testing.assert_allclose(convT.forward(x), ref.numpy(), rtol=1e-12, atol=1e-12)
