"""The paper's Figure 1, re-created from one real training run in 1-D.

Goodfellow et al. (2014), Figure 1, draws four moments of adversarial
training on a line: the data density p_data (black, dotted), the generator's
density p_g (green, solid) and the discriminator D(x) (blue, dashed). Under
them, the lower horizontal line is the domain of the noise z (uniform) and the
upper one part of the domain of x; arrows show how x = G(z) maps evenly
spaced z to unevenly spaced x -- G *contracts* where p_g is dense and
*expands* where it is sparse.

Here every curve comes from an actual GAN trained by this library:

* p_data = N(2, 0.5^2), sampled on the host with a NumPy generator;
* z ~ U[-1, 1] (one dimension); G a 1 -> 64 -> 1 MLP with LeakyReLU(0.2),
  initialised as an increasing map of z onto about [0.5, 1.5] (left of the
  data; see ``increasing_generator``); D a 1 -> 32 -> 32 -> 1 LeakyReLU MLP
  giving a logit, D(x) = sigmoid(logit);
* Algorithm 1 exactly as printed -- the **minimax** loss (D ascends
  log D(x) + log(1 - D(G(z))), G descends log(1 - D(G(z)))) -- with k = 5 D
  steps per G step; Adam (betas 0.5, 0.999), lr 5e-3 for D and 5e-4 for G,
  batch 256. Minimax converged reliably here (seeds 0-3 end within total
  variation 0.04-0.08 of p_data); ``--loss non-saturating`` (the paper's
  Section 3 advice) does just as well. With ``-k 1`` p_g still converges, but
  ends further from p_data (total variation 0.12-0.24 at 3000 iterations).

The four panels are one run, stopped at four moments:

(a) after ``--a-at`` iterations (default 25): p_g is still offset from
    p_data, and D is only a partially accurate classifier;
(b) then ``--d-steps`` discriminator-only updates (default 300; ``GAN.d_step``,
    G frozen): D approaches D*(x) = p_data / (p_data + p_g), drawn as a thin
    grey line computed from the two densities shown;
(c) then ``--g-steps`` generator-only updates (default 15; ``GAN.g_step``,
    D frozen): the gradient of D has moved G(z) towards where D says "data";
(d) then ordinary training until ``--iterations`` (default 3000) in all:
    p_g ~ p_data and D(x) ~ 1/2 where the data lie. At the edges, in p_data's
    far tails (beyond about 2 std), G -- fed *bounded* uniform noise -- puts
    no mass, so there D* = p_data / (p_data + 0) really is 1, and D follows it.

p_g is a smoothed histogram (Gaussian kernel density estimate) of 50 000
samples of G in evaluation mode, and D is evaluated on a grid.

Run (CPU, about 15 s)::

    python demos/toy_1d.py                       # -> demos/out/figure1.png
    python demos/toy_1d.py --device gpu          # same code on CuPy
    python demos/toy_1d.py --seed 3 --out /tmp/fig1.png
"""

from __future__ import annotations

import os

# The matrices here are tiny (batch x 64): BLAS threads only add overhead, and
# on a busy machine they make each step many times slower. Set before NumPy loads.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import time

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from scratchgan.backend import get_device, to_numpy
from scratchgan.cli import run_script
from scratchgan.gan import GAN, NoisePrior
from scratchgan.nn import Adam, LeakyReLU, Linear, Sequential, losses, sigmoid

DATA_MEAN, DATA_STD = 2.0, 0.5
X_LIM = (0.25, 3.75)  # the part of the x-domain that is drawn
N_ARROWS = 20          # evenly spaced z values whose images G(z) are drawn

# where things sit vertically inside each panel (densities live in [0, ~0.9])
X_LINE, Z_LINE = -0.12, -0.62


# ---------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------
def mlp(sizes, activation, rng):
    """Linear layers with ``activation()`` between them (none after the last)."""
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [Linear(n_in, n_out, init="glorot", rng=rng), activation()]
    return Sequential(layers[:-1])


def increasing_generator(hidden, rng, start=1.0):
    """G: z -> LeakyReLU(hidden units) -> x, initialised as an *increasing* map.

    All weights start positive, so G(z) begins as a monotone map of [-1, 1]
    onto roughly [start - 0.5, start + 0.5], left of p_data. (From a
    random-sign initialisation 1-D GANs often learn a folded, non-monotone G:
    an equally valid p_g, but the arrows then cross.) Training is unconstrained.
    """
    first = Linear(1, hidden, bias=rng.uniform(-2.0, 2.0, hidden), rng=rng)
    first.params["W"][...] = rng.uniform(1.0, 3.0, (1, hidden))  # kinks at z = -b/w, spread over about [-2, 2]
    last = Linear(hidden, 1, bias=start, rng=rng)
    last.params["W"][...] = rng.uniform(0.0, 1.0, (hidden, 1)) / hidden
    return Sequential([first, LeakyReLU(0.2), last])


def build_gan(device, seed, loss, *, k=5, g_hidden=64, d_hidden=32, lr_d=5e-3, lr_g=5e-4):
    init_rng = np.random.default_rng([seed, 1])
    G = increasing_generator(g_hidden, init_rng)
    D = mlp([1, d_hidden, d_hidden, 1], lambda: LeakyReLU(0.2), init_rng)
    return GAN(G, D,
               d_opt=Adam(D, lr=lr_d, betas=(0.5, 0.999)),
               g_opt=Adam(G, lr=lr_g, betas=(0.5, 0.999)),
               prior=NoisePrior(1, "uniform"),  # z ~ U[-1, 1]
               loss=loss, k=k, seed=seed, device=device)


def p_data(x):
    """The data density N(DATA_MEAN, DATA_STD^2)."""
    return np.exp(-0.5 * ((x - DATA_MEAN) / DATA_STD) ** 2) / (DATA_STD * np.sqrt(2 * np.pi))


# ---------------------------------------------------------------------------
# Looking at the pair (G, D) at one moment
# ---------------------------------------------------------------------------
def smoothed_density(samples, grid, bandwidth):
    """Kernel density estimate of ``samples`` on the evenly spaced ``grid``:
    a histogram with one bin per grid point, convolved with a Gaussian."""
    dx = grid[1] - grid[0]
    edges = np.concatenate([grid - dx / 2, grid[-1:] + dx / 2])
    counts, _ = np.histogram(samples, bins=edges)
    half = min(int(np.ceil(4 * bandwidth / dx)), (len(grid) - 1) // 2)  # kernel no longer than the grid
    u = np.arange(-half, half + 1) * dx
    kernel = np.exp(-0.5 * (u / bandwidth) ** 2)
    kernel /= kernel.sum()
    return np.convolve(counts, kernel, mode="same") / (len(samples) * dx)


def snapshot(gan, device, grid, n_samples=50_000):
    """p_g, D(x) on ``grid``, and G(z) for the evenly spaced z of the arrows."""
    x = to_numpy(gan.sample(n_samples)).ravel()
    bandwidth = 1.06 * max(x.std(), 1e-3) * n_samples ** (-1 / 5)  # Silverman's rule
    logits = gan.D.forward(device.asarray(grid[:, None], dtype=np.float32), train=False)
    z = np.linspace(-1, 1, N_ARROWS, dtype=np.float32)[:, None]
    gz = gan.sample(N_ARROWS, z=device.asarray(z))
    return {
        "p_g": smoothed_density(x, grid, bandwidth),
        "D": to_numpy(sigmoid(logits)).ravel(),
        "z": z.ravel(),
        "G(z)": to_numpy(gz).ravel(),
    }


def describe(name, snap, grid):
    """One line of numbers for the console: how far p_g and D are from the optimum."""
    pd = p_data(grid)
    dx = grid[1] - grid[0]
    tv = 0.5 * np.abs(pd - snap["p_g"]).sum() * dx            # total variation distance
    d_mean = (snap["D"] * pd).sum() * dx / (pd.sum() * dx)   # E_{x ~ p_data}[D(x)]
    d_dev = (np.abs(snap["D"] - 0.5) * pd).sum() / pd.sum()   # E_{p_data}|D(x) - 1/2|
    print(f"  {name:<32s} TV(p_data, p_g) = {tv:.3f}   E_data[D] = {d_mean:.3f}   "
          f"E_data|D - 1/2| = {d_dev:.3f}")


# ---------------------------------------------------------------------------
# Drawing one panel in the style of Figure 1
# ---------------------------------------------------------------------------
def draw_panel(ax, snap, grid, title, top, show_d_star=False):
    lo, hi = X_LIM
    inside = (grid >= lo) & (grid <= hi)
    x, pd, pg, d = grid[inside], p_data(grid)[inside], snap["p_g"][inside], snap["D"][inside]
    ax.hlines(0.5, lo, hi, color="0.8", lw=0.8, zorder=0)  # the level D = 1/2
    ax.plot(x, pd, color="black", ls=":", lw=2.0)
    ax.plot(x, pg, color="green", ls="-", lw=1.8)
    ax.plot(x, d, color="tab:blue", ls="--", lw=1.8)
    if show_d_star:
        # D*(x) where either density is visible; undefined (0/0) elsewhere
        mass = pd + pg
        d_star = np.where(mass > 1e-3, pd / np.maximum(mass, 1e-12), np.nan)
        ax.plot(x, d_star, color="0.45", ls="-", lw=0.8)

    # the two domains: x (upper line) and z (lower line, same length)
    ax.hlines([X_LINE, Z_LINE], lo, hi, color="black", lw=1.0)
    ax.text(hi, X_LINE + 0.02, " x", ha="left", va="bottom", fontsize=10, style="italic")
    ax.text(hi, Z_LINE + 0.02, " z", ha="left", va="bottom", fontsize=10, style="italic")

    # z in [-1, 1] is drawn along the whole z line; arrows go from z up to G(z)
    z_pos = lo + (snap["z"] + 1) / 2 * (hi - lo)
    ax.vlines(z_pos, Z_LINE - 0.025, Z_LINE + 0.025, color="black", lw=1.0)
    gz = np.clip(snap["G(z)"], lo, hi)
    ax.quiver(z_pos, np.full_like(z_pos, Z_LINE), gz - z_pos, np.full_like(z_pos, X_LINE - Z_LINE),
              angles="xy", scale_units="xy", scale=1, width=0.004, headwidth=5, headlength=6,
              headaxislength=5, color="0.25")

    ax.set_xlim(lo, hi + 0.3)
    ax.set_ylim(Z_LINE - 0.08, top)
    ax.set_axis_off()
    ax.set_title(title, fontsize=10)


def figure1(snaps, labels, grid, path):
    fig = Figure(figsize=(16, 4.4), dpi=100)
    axes = fig.subplots(1, 4)
    shown = (grid >= X_LIM[0]) & (grid <= X_LIM[1])
    peak = max(s["p_g"][shown].max() for s in snaps)  # one vertical scale for all panels
    top = min(max(peak, 1.0), 1.8) + 0.06
    for i, (ax, snap, label) in enumerate(zip(axes, snaps, labels)):
        draw_panel(ax, snap, grid, label, top, show_d_star=(i == 1))
    handles = [Line2D([], [], color="black", ls=":", lw=2.0),
               Line2D([], [], color="green", ls="-", lw=1.8),
               Line2D([], [], color="tab:blue", ls="--", lw=1.8),
               Line2D([], [], color="0.45", ls="-", lw=0.8),
               Line2D([], [], color="0.8", ls="-", lw=0.8)]
    fig.legend(handles,
               [r"$p_{data}(x)$", r"$p_g(x)$ (G samples, smoothed)", r"$D(x)$",
                r"$D^*(x) = p_{data}/(p_{data}+p_g)$ (panel b)", r"$D = 1/2$"],
               loc="upper center", ncol=5, frameon=False, fontsize=10)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.02, top=0.84, wspace=0.06)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)


# ---------------------------------------------------------------------------
# One training run, stopped four times
# ---------------------------------------------------------------------------
def build_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "gpu", "auto"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "out", "figure1.png"))
    p.add_argument("--iterations", type=int, default=3000,
                   help="Algorithm 1 iterations in all, (a) included (default 3000)")
    p.add_argument("--a-at", type=int, default=25, help="iteration of panel (a) (default 25)")
    p.add_argument("--d-steps", type=int, default=300, help="D-only steps before (b) (default 300)")
    p.add_argument("--g-steps", type=int, default=15, help="G-only steps before (c) (default 15)")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("-k", type=int, default=5, help="D steps per G step (default 5)")
    p.add_argument("--loss", default="minimax", choices=losses.NAMES[:2],
                   help="minimax (Algorithm 1, default) or non-saturating")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    if not 0 < args.a_at <= args.iterations:
        raise SystemExit("--a-at must be between 1 and --iterations")
    start = time.perf_counter()
    device = get_device(args.device)
    gan = build_gan(device, args.seed, args.loss, k=args.k)
    data_rng = np.random.default_rng([args.seed, 2])

    def sample_data(m):  # drawn on the host, moved to the device
        x = data_rng.normal(DATA_MEAN, DATA_STD, size=(m, 1)).astype(np.float32)
        return device.asarray(x)

    grid = np.linspace(X_LIM[0] - 0.5, X_LIM[1] + 0.5, 600)
    snaps, labels = [], []
    print(f"toy_1d: {args.loss} loss, k = {args.k}, on {device}; p_data = N({DATA_MEAN}, {DATA_STD}^2)")

    for _ in range(args.a_at):                                   # (a)
        gan.iteration(lambda: sample_data(args.batch))
    snaps.append(snapshot(gan, device, grid))
    labels.append(f"(a) after {args.a_at} iterations")

    for _ in range(args.d_steps):                                # (b): D only
        gan.d_step(sample_data(args.batch))
    snaps.append(snapshot(gan, device, grid))
    labels.append(f"(b) then {args.d_steps} D-only steps")

    for _ in range(args.g_steps):                                # (c): G only
        gan.g_step(args.batch)
    snaps.append(snapshot(gan, device, grid))
    labels.append(f"(c) then {args.g_steps} G-only steps")

    for _ in range(args.iterations - args.a_at):                 # (d)
        gan.iteration(lambda: sample_data(args.batch))
    snaps.append(snapshot(gan, device, grid))
    labels.append(f"(d) after {args.iterations} iterations")

    for label, snap in zip(labels, snaps):
        describe(label, snap, grid)
    figure1(snaps, labels, grid, args.out)
    device.synchronize()
    print(f"wrote {args.out}")
    print(f"wall time: {time.perf_counter() - start:.1f} s")
    return snaps


if __name__ == "__main__":
    raise SystemExit(run_script(main))
