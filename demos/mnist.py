"""The paper's MNIST GAN, top to bottom, with the library's API.

Read this file beside Algorithm 1 of Goodfellow et al. (2014). It loads MNIST,
builds the generator and discriminator layer by layer, trains them with
Algorithm 1 and saves a grid of samples. The command line
(``python -m scratchgan train``) does the same with checkpoints, logs and
plots; this script is for reading.

    python demos/mnist.py --device cpu --epochs 1
    python demos/mnist.py --device gpu --epochs 20
"""

import argparse
import time

import numpy as np

from scratchgan.backend import get_device
from scratchgan.cli import run_script
from scratchgan.data import load_dataset
from scratchgan.gan import GAN, NoisePrior
from scratchgan.models.paper_mlp import pixel_logit_bias
from scratchgan.nn import SGD, Dropout, ExponentialDecay, Linear, LinearMomentum, Maxout, ReLU, Sequential, Sigmoid
from scratchgan.plots import save_grid


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu", choices=["cpu", "gpu", "auto"])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--iterations", type=int, default=None, help="stop after this many (a quick look)")
    ap.add_argument("--k", type=int, default=1, help="D steps per G step (the paper: 1)")
    ap.add_argument("--out", default="demos/out/mnist_samples.png")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", help="folder with the MNIST files (default: $SCRATCHGAN_DATA, the cache, "
                                       "a download)")
    args = ap.parse_args(argv)
    device = get_device(args.device)

    # 1. Data: 50,000 training images as float32 in [0, 1], on the device.
    data = load_dataset("mnist", data_dir=args.data_dir)
    x_train = device.asarray(data.train)
    m = 100  # minibatch size

    # 2. The generator: z (100) -> ReLU 1200 -> ReLU 1200 -> sigmoid 784.
    #    Weights U(-0.05, 0.05); the output bias starts at the logit of the mean digit.
    rng = np.random.default_rng(args.seed)
    G = Sequential([
        Linear(100, 1200, irange=0.05, rng=rng), ReLU(),
        Linear(1200, 1200, irange=0.05, rng=rng), ReLU(),
        Linear(1200, 784, irange=0.05, rng=rng, bias=pixel_logit_bias(data.train.mean(axis=0))), Sigmoid(),
    ])

    # 3. The discriminator: dropout, maxout 240x5, dropout, maxout 240x5, dropout, a logit.
    #    D(x) = sigmoid(logit); the losses work on the logit directly.
    D = Sequential([
        Dropout(0.2), Maxout(784, 240, 5, irange=0.005, rng=rng),
        Dropout(0.5), Maxout(240, 240, 5, irange=0.005, rng=rng),
        Dropout(0.5), Linear(240, 1, irange=0.005, rng=rng),
    ])
    print(G.summary((100,)), "\n")
    print(D.summary((784,)), "\n")

    # 4. Momentum SGD with the paper's schedules: lr 0.1 / 1.000004^t, momentum 0.5 -> 0.7.
    steps_per_epoch = len(data.train) // (m * args.k)
    lr = ExponentialDecay(0.1, decay=1.000004, min_lr=1e-6)
    mu_G = LinearMomentum(0.5, 0.7, saturate_epoch=250, steps_per_epoch=steps_per_epoch)
    mu_D = LinearMomentum(0.5, 0.7, saturate_epoch=250, steps_per_epoch=steps_per_epoch * args.k)  # k D updates per G update

    # 5. Algorithm 1: k D steps (ascend log D(x) + log(1 - D(G(z)))), then one G step.
    #    G maximises log D(G(z)), the paper's Section 3 advice ("non-saturating").
    gan = GAN(G, D, SGD(D, lr=lr, momentum=mu_D), SGD(G, lr=lr, momentum=mu_G),
              NoisePrior(100, "uniform-sqrt3"), loss="non-saturating", k=args.k,
              seed=args.seed, device=device)

    order_rng = np.random.default_rng(args.seed + 1)
    t0 = time.perf_counter()
    done = 0
    for epoch in range(1, args.epochs + 1):
        order = device.asarray(order_rng.permutation(len(data.train))).reshape(-1, m)
        batches = iter(range(len(order)))
        for it in range(steps_per_epoch):
            stats = gan.iteration(lambda: x_train[order[next(batches)]])   # x ~ p_data (line 4)
            done += 1
            if it % 100 == 0:  # float() waits for the GPU: only every 100 iterations
                print(f"epoch {epoch} it {it:4d}  D loss {float(stats['d_loss']):.3f}  "
                      f"G loss {float(stats['g_loss']):.3f}  D(x) {float(stats['D_x']):.2f}  "
                      f"D(G(z)) {float(stats['D_G_z']):.2f}")
            if args.iterations and done >= args.iterations:
                break
        if args.iterations and done >= args.iterations:
            break
    print(f"{done} iterations in {time.perf_counter() - t0:.1f} s on {device.kind}")

    # 6. Samples: G in evaluation mode on fresh noise.
    save_grid(gan.sample(100), args.out, nrow=10, title=f"demos/mnist.py, {done} iterations")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    raise SystemExit(run_script(main))
