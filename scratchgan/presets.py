"""Presets: named, declarative configurations, and how to build one.

A :class:`Preset` says which model builder, GAN variant, loss, optimisers,
schedules, noise prior, batch size and dataset make a run, and how it
departs from its paper. Unknown keys are errors, everywhere: a misspelt model
argument or optimiser option stops the run before anything is built.

``python -m scratchgan presets`` prints them all.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field, fields, replace

import numpy as np

from .backend import get_device
from .gan import NoisePrior, get_variant
from .gan.priors import PRIORS
from .models import get_model
from .nn import fast, losses, optim
from .nn.batch_split import BatchSplit, why_not_split
from .nn.layers import positive_int

__all__ = ["Preset", "PRESETS", "OVERRIDES", "resolve", "build_optimizer", "build_gan", "get_preset"]

#: Keys of each optimiser spec (besides ``name``).
OPTIMIZER_KEYS = {
    "sgd": {"lr", "momentum", "lr_decay", "min_lr", "final_momentum", "momentum_saturate", "max_col_norm",
            "weight_decay"},
    "adam": {"lr", "betas", "eps", "weight_decay"},
    "rmsprop": {"lr", "alpha", "eps", "weight_decay"},
}
#: What ``--optimizer NAME`` switches to when the preset uses another optimiser.
OPTIMIZER_DEFAULTS = {"sgd": {"name": "sgd", "lr": 0.1, "momentum": 0.5}, "adam": {"name": "adam", "lr": 2e-4},
                      "rmsprop": {"name": "rmsprop", "lr": 5e-5}}


#: options that only mean something beside another one
OPTIMIZER_NEEDS = {"min_lr": "lr_decay", "momentum_saturate": "final_momentum"}


def _check_optimizer(spec, where):
    name = spec.get("name")
    if name not in OPTIMIZER_KEYS:
        raise ValueError(f"{where}: unknown optimiser {name!r}; choose one of {', '.join(OPTIMIZER_KEYS)}")
    unknown = set(spec) - OPTIMIZER_KEYS[name] - {"name"}
    if unknown:
        raise ValueError(f"{where}: unknown {name} option(s) {sorted(unknown)}; "
                         f"known: {sorted(OPTIMIZER_KEYS[name])}")
    for option, needs in OPTIMIZER_NEEDS.items():
        if option in spec and needs not in spec:
            raise ValueError(f"{where}: {name} option {option!r} needs {needs!r}")
    if "lr" not in spec:
        raise ValueError(f"{where}: the {name} optimiser needs an 'lr'")


@dataclass(frozen=True)
class Preset:
    """One named configuration.

    Attributes
    ----------
    summary : one line: what it is
    paper : the paper (and code) it follows
    model, model_args : a builder of :data:`scratchgan.models.MODELS` and its keyword arguments
    variant, variant_args : a class of :data:`scratchgan.gan.VARIANTS` and its extra arguments
    loss, d_scale : a loss of :mod:`scratchgan.nn.losses`; the factor on D's loss
    prior, noise_dim : the noise prior ``p_z`` and its dimension
    batch_size, k : minibatch size m; D steps per G step
    optimizers : ``{"D": spec, "G": spec}``, each ``{"name": "sgd"|"adam", …}``
    dataset : the default dataset
    deviations : how this preset departs from its paper, one sentence each
    """

    summary: str
    paper: str
    model: str
    model_args: dict
    variant: str
    loss: str
    prior: str
    noise_dim: int
    batch_size: int
    optimizers: dict
    dataset: str = "mnist"
    k: int = 1
    d_scale: float = 1.0
    variant_args: dict = field(default_factory=dict)
    deviations: tuple = ()

    def __post_init__(self):
        builder = get_model(self.model)
        accepted = {n for n, p in inspect.signature(builder).parameters.items() if p.kind == p.KEYWORD_ONLY}
        unknown = set(self.model_args) - (accepted - {"noise_dim", "pixel_mean", "rng", "fast_layers"})
        if unknown:
            raise ValueError(f"model {self.model!r} has no argument(s) {sorted(unknown)}")
        variant = get_variant(self.variant)
        own = {n for cls in variant.__mro__ if "__init__" in vars(cls)
               for n, q in inspect.signature(cls.__init__).parameters.items() if q.kind == q.KEYWORD_ONLY}
        unknown = set(self.variant_args) - (own - {"loss", "k", "seed", "device"})
        if unknown:
            raise ValueError(f"variant {self.variant!r} has no argument(s) {sorted(unknown)}")
        shared = {k for k in set(self.model_args) & set(self.variant_args)
                  if self.model_args[k] != self.variant_args[k]}
        if shared:  # e.g. InfoGAN's code sizes, which the networks and the variant must agree on
            raise ValueError(f"model_args and variant_args disagree on {sorted(shared)}")
        if self.variant == "simultaneous" and self.k != 1:
            raise ValueError("the simultaneous variant updates D and G from one minibatch: k must be 1")
        from .paired import ALL_DATASETS, TASKS
        if self.dataset not in ALL_DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; choose one of {', '.join(ALL_DATASETS)}")
        if "source" in variant.needs and self.dataset not in TASKS:
            raise ValueError(f"the {self.variant!r} variant trains on paired images: choose a paired dataset "
                             f"({', '.join(TASKS)}), not {self.dataset!r}")
        if "source" not in variant.needs and self.dataset in TASKS:
            raise ValueError(f"{self.dataset!r} is a paired translation task, for the pix2pix presets; the "
                             f"{self.variant!r} variant generates images of a dataset: choose mnist or fashion-mnist")
        losses.get(self.loss)
        if self.prior not in PRIORS:
            raise ValueError(f"unknown noise prior {self.prior!r}; choose one of {', '.join(PRIORS)}")
        if set(self.optimizers) != {"D", "G"}:
            raise ValueError(f"optimizers needs exactly the keys 'D' and 'G', got {sorted(self.optimizers)}")
        for net, spec in self.optimizers.items():
            _check_optimizer(spec, f"optimizer of {net}")


_PAPER_SGD = dict(name="sgd", lr=0.1, lr_decay=1.000004, min_lr=1e-6, momentum=0.5, final_momentum=0.7,
                  momentum_saturate=250)

PRESETS = {
    "paper": Preset(
        summary="the 2014 paper's MNIST GAN: MLP G, maxout D with dropout, momentum SGD",
        paper="Goodfellow et al. 2014 (arXiv 1406.2661) and its code, goodfeli/adversarial mnist.yaml",
        model="paper_mlp",
        model_args=dict(g_hidden=(1200, 1200), g_irange=0.05, d_units=240, d_pieces=5, d_layers=2,
                        d_irange=0.005, d_dropout=(0.2, 0.5, 0.5)),
        variant="simultaneous", loss="non-saturating", d_scale=0.5, prior="uniform-sqrt3", noise_dim=100,
        batch_size=100, optimizers={"D": _PAPER_SGD, "G": _PAPER_SGD},
        deviations=(
            "D and G are updated simultaneously from one minibatch (the authors' code); Algorithm 1 "
            "alternates (--update alternating).",
            "G minimises -log D(G(z)) (non-saturating, the paper's Section 3 advice and the code), not "
            "log(1 - D(G(z))) (--loss minimax).",
            "D's loss carries a factor 0.5 (the code's 0.5*[BCE(real,1) + BCE(fake,0)]); Algorithm 1 has none.",
            "Noise is uniform on [-sqrt3, sqrt3] (the code); the paper's text does not give the prior.",
            "Training runs for the epochs asked; the code ran until killed and the paper's epoch count "
            "is not recorded.",
        )),
    "small": Preset(
        summary="a narrow version of the paper's model for smoke tests: about 7 s an epoch on one core, rough "
                "digits of every class after 30 epochs (for a first look use --preset paper --epochs 5)",
        paper="Goodfellow et al. 2014, scaled down",
        model="paper_mlp",
        model_args=dict(g_hidden=(256, 256), g_irange=0.05, d_units=64, d_pieces=3, d_layers=2,
                        d_irange=0.005, d_dropout=(0.2, 0.5, 0.5)),
        variant="simultaneous", loss="non-saturating", d_scale=0.5, prior="uniform-sqrt3", noise_dim=32,
        batch_size=100, optimizers={"D": _PAPER_SGD, "G": _PAPER_SGD},
        deviations=("Narrower networks (G 256-256, D maxout 64x3) and 32 noise dimensions; otherwise as "
                    "the paper preset.",)),
}

PRESETS["dcgan"] = Preset(
    summary="DCGAN at 28x28: transposed-convolution G, strided-convolution D, batch normalisation, Adam",
    paper="Radford, Metz & Chintala 2016 (arXiv 1511.06434), its architecture guidelines and training details",
    model="dcgan",
    model_args=dict(g_channels=(128, 64), d_channels=(64, 128), std=0.02, slope=0.2),
    variant="gan", loss="non-saturating", prior="uniform", noise_dim=100, batch_size=128,
    optimizers={"D": dict(name="adam", lr=2e-4, betas=(0.5, 0.999)), "G": dict(name="adam", lr=2e-4, betas=(0.5, 0.999))},
    deviations=(
        "28x28 images with two up-samplings from 7x7: G 128 -> 64 -> 1 channels, D 64 -> 128 (the paper's LSUN "
        "G has 1024 -> 512 -> 256 -> 128 -> 3 at 64x64).",
        "G's output is a sigmoid on [0, 1], as in the authors' MNIST code; the paper's default is tanh on [-1, 1].",
        "Algorithm 1 with k = 1 and the non-saturating G loss; real and fake batches go through D's batch "
        "normalisation as two passes. The paper does not state its update order.",
        "z is uniform on [-1, 1] in 100 dimensions, as the authors' code draws it.",
        "Adam at a constant rate by default; the authors' MNIST code decays it linearly to 0 over its second 100 "
        "epochs, which train --lr-decay-epochs N does over the last N epochs (docs/dcgan.md section 6).",
    ))
PRESETS["dcgan-fc"] = replace(
    PRESETS["dcgan"],
    summary="DCGAN with the authors' MNIST layer plan: the dcgan networks plus a 1024-unit fully connected layer "
            "in G and in D",
    paper="Radford, Metz & Chintala 2016 and their MNIST code (Newmu/dcgan_code mnist/train_cond_dcgan.py, "
          "without its label); docs/dcgan.md section 5",
    model_args=dict(PRESETS["dcgan"].model_args, fc_units=1024),
    deviations=(
        "The authors' MNIST layer plan (G: z -> FC 1024 -> FC 128x7x7 -> deconv 64 -> deconv 1; D: conv 64 -> "
        "conv 128 -> FC 1024 -> logit; BN on every hidden layer but D's first), which keeps one fully connected "
        "hidden layer on each side where the paper's guidelines drop them; the authors' MNIST nets are "
        "conditional, this one is not. 4x4 kernels (stride 2, padding 1) where the authors use 5x5, biases kept.",
    ) + PRESETS["dcgan"].deviations[1:])

_CRITIC = dict(dim=32, slope=0.2)
_WGAN_CONV = ("The WGAN-GP authors' MNIST critic (three 5x5 stride-2 convolutions, LeakyReLU, a linear "
              "output, no normalisation) with DIM = 32 (theirs: 64), and a G that starts at 7x7 and doubles twice "
              "with 4x4 transposed convolutions (theirs: 4x4 -> 8x8 -> crop to 7x7, then two more 5x5 transposed "
              "convolutions, three in all, the middle one DIM wide).")

PRESETS["wgan"] = Preset(
    summary="WGAN: a critic with weights clipped to [-0.01, 0.01], RMSProp 5e-5, 5 critic steps per G step",
    paper="Arjovsky, Chintala & Bottou 2017 (arXiv 1701.07875), its Algorithm 1",
    model="wgan_conv", model_args=_CRITIC, variant="wgan", variant_args=dict(clip=0.01, schedule="paper"),
    loss="wasserstein", prior="normal", noise_dim=100, batch_size=64, k=5,
    optimizers={"D": dict(name="rmsprop", lr=5e-5), "G": dict(name="rmsprop", lr=5e-5)},
    deviations=(
        "The paper has no MNIST experiment; the critic and G are the WGAN-GP authors' MNIST networks. " + _WGAN_CONV,
        "The paper's Algorithm 1: 5 critic steps always. The authors' code trains the critic 100 times for the "
        "first 25 G steps and every 500th (variant argument schedule='authors').",
        "RMSProp as PyTorch's (alpha 0.99, eps 1e-8, no momentum).",
    ))
PRESETS["wgan-gp"] = Preset(
    summary="WGAN-GP: the gradient penalty (lambda 10) instead of clipping; Adam(1e-4, 0, 0.9); 5 critic steps",
    paper="Gulrajani et al. 2017 (arXiv 1704.00028), its Algorithm 1 and default hyperparameters",
    model="wgan_conv", model_args=_CRITIC, variant="wgan-gp", variant_args=dict(lam=10.0),
    loss="wasserstein", prior="normal", noise_dim=128, batch_size=64, k=5,
    optimizers={"D": dict(name="adam", lr=1e-4, betas=(0.0, 0.9)), "G": dict(name="adam", lr=1e-4, betas=(0.0, 0.9))},
    deviations=(_WGAN_CONV, "An epsilon of 1e-12 inside the gradient norm, so a zero gradient gives no NaN.",))
PRESETS["wgan-gp-mnist"] = Preset(
    summary="WGAN-GP as the authors' MNIST code sets it: Adam(1e-4, 0.5, 0.9), batch 50, 5 critic steps",
    paper="Gulrajani et al. 2017, igul222/improved_wgan_training gan_mnist.py (MODE wgan-gp)",
    model="wgan_conv", model_args=_CRITIC, variant="wgan-gp", variant_args=dict(lam=10.0),
    loss="wasserstein", prior="normal", noise_dim=128, batch_size=50, k=5,
    optimizers={"D": dict(name="adam", lr=1e-4, betas=(0.5, 0.9)), "G": dict(name="adam", lr=1e-4, betas=(0.5, 0.9))},
    deviations=(_WGAN_CONV, "Trained for epochs, not the code's 200,000 generator iterations (out of reach on a "
                "CPU).",))
PRESETS["r1"] = Preset(
    summary="R1: the non-saturating GAN with (gamma/2) E||grad D(x)||^2 on real data, gamma 10, RMSProp 1e-4",
    paper="Mescheder, Geiger & Nowozin 2018 (arXiv 1801.04406), the R1 regulariser; its code LMescheder/GAN_stability",
    model="wgan_conv", model_args=_CRITIC, variant="r1", variant_args=dict(gamma=10.0),
    loss="non-saturating", prior="normal", noise_dim=128, batch_size=64, k=1,
    optimizers={"D": dict(name="rmsprop", lr=1e-4, alpha=0.99), "G": dict(name="rmsprop", lr=1e-4, alpha=0.99)},
    deviations=(_WGAN_CONV + " (The R1 paper's experiments use ResNets; these nets keep the comparison with "
                "WGAN-GP fair.)",
                "The paper's penalty (gamma/2)*E||grad D||^2 with gamma = 10; its code adds reg_param*E||grad D||^2 "
                "with reg_param = 10, which is gamma = 20 in the paper's form.",
                "No moving average of G's weights for sampling (the code samples from one, decay 0.999), and "
                "128-d Gaussian noise (the code: 256-d).",
                "RMSProp 1e-4 for both networks, as the code's configurations; one D step per G step."))

_INFOGAN_ADAM = {"D": dict(name="adam", lr=2e-4, betas=(0.5, 0.999)), "G": dict(name="adam", lr=1e-3, betas=(0.5, 0.999))}
_INFOGAN_DEVIATIONS = (
    "Q's continuous codes are Gaussians with a fixed sigma = 1 (the authors' code); the paper says only 'a "
    "factored Gaussian'.",
    "The weights are drawn from N(0, 0.02), not truncated, and batch-norm scales start at 1; the authors' code "
    "truncates the convolutions' normal and draws the scales from N(1, 0.02).",
    "Length: the authors' code makes 5,000 updates at batch 128 (50 x 100); with the 50,000 training images of "
    "the paper split an epoch is 390 updates, so --epochs 13 gives 5,070. The paper gives no length.",
    "MNIST's training split holds 50,000 images (the 2014 paper's split); the authors' code trained on "
    "TensorFlow's 55,000.",
)

PRESETS["infogan"] = Preset(
    summary="InfoGAN on MNIST: codes c1 ~ Cat(10), c2, c3 ~ U(-1, 1) learned without labels; D and Q share a "
            "convolutional trunk",
    paper="Chen et al. 2016 (arXiv 1606.03657), Appendix C; unstated details from the authors' code, openai/InfoGAN",
    model="infogan",
    model_args=dict(categories=10, continuous=2, slope=0.1, std=0.02),
    variant="infogan",
    variant_args=dict(categories=10, continuous=2, lambda_cat=1.0, lambda_cont=0.1, sigma=1.0),
    loss="non-saturating", prior="uniform", noise_dim=62, batch_size=128, optimizers=_INFOGAN_ADAM,
    deviations=(
        "lambda = 0.1 on the continuous codes, 1 on the categorical one: the paper asks for a 'smaller' lambda on "
        "continuous codes without a number (PyTorch-GAN uses 0.1); the authors' code used 1 for both "
        "(--preset infogan-code).",
        "LeakyReLU leak 0.1 as the paper says; the authors' code used 0.01 (--preset infogan-code).",
    ) + _INFOGAN_DEVIATIONS)

PRESETS["infogan-code"] = replace(
    PRESETS["infogan"],
    summary="InfoGAN as the authors' code ran it: the infogan preset with leak 0.01 and lambda 1 on every code",
    paper="openai/InfoGAN launchers/run_mnist_exp.py (Chen et al. 2016)",
    model_args=dict(categories=10, continuous=2, slope=0.01, std=0.02),
    variant_args=dict(categories=10, continuous=2, lambda_cat=1.0, lambda_cont=1.0, sigma=1.0),
    deviations=(
        "lambda = 1 on the continuous codes too (the code's info_reg_coeff); the paper uses a smaller one "
        "(--preset infogan).",
        "LeakyReLU leak 0.01, the code's default; the paper says 0.1 (--preset infogan).",
    ) + _INFOGAN_DEVIATIONS)

_PIX2PIX_ADAM = dict(name="adam", lr=2e-4, betas=(0.5, 0.999))
PRESETS["pix2pix"] = Preset(
    summary="pix2pix on edges2fashion (Fashion-MNIST edges -> image, 32x32): U-Net G, 16x16-patch PatchGAN D, "
            "cGAN + 100 L1, Adam",
    paper="Isola, Zhu, Zhou & Efros 2017 (arXiv 1611.07004) and the authors' Torch code, phillipi/pix2pix",
    model="pix2pix",
    model_args=dict(ngf=32, ndf=32, n_layers=1, dropout_blocks=3, skips=True, test_dropout=True),
    variant="pix2pix", variant_args=dict(lambda_l1=100.0, adversarial=True), loss="non-saturating", d_scale=0.5,
    prior="uniform", noise_dim=0, batch_size=16, dataset="edges2fashion",
    optimizers={"D": _PIX2PIX_ADAM, "G": _PIX2PIX_ADAM},
    deviations=(
        "32x32 images (28x28 padded by 2): a U-Net of 5 levels with ngf 32 (the paper: 8 levels at 256x256, "
        "ngf 64) and a PatchGAN with n_layers 1 and ndf 32, 16x16 patches in a 14x14 map (the paper: 70x70 "
        "patches of 256x256, a 30x30 map).",
        "Minibatches of 16 pairs (the paper: 1), for the CPU; batch normalisation therefore normalises over 16 "
        "pairs in training and uses its running statistics at test (the paper keeps the test batch's "
        "statistics, instance normalisation at batch 1). Dropout stays on at test, as in the paper.",
        "No random jitter (the paper resizes to 286 and crops 256, and flips): the pairs are aligned, centred "
        "28x28 images.",
        "Training runs for the epochs asked (a few epochs of 50,000 pairs on a CPU); the paper trains "
        "facades (400 pairs) for 200 epochs.",
        "D's loss is halved in its gradient too, as the paper's text says; the authors' Torch code halved only "
        "the value it printed (under Adam the factor changes little).",
        "G's adversarial gradient comes from a new pass through D after D's update (as the authors' PyTorch "
        "port does); their Torch code reused D's outputs from before the update.",
    ))
PRESETS["pix2pix-l1"] = replace(
    PRESETS["pix2pix"], summary="pix2pix ablation: L1 alone (no D), U-Net on edges2fashion",
    variant_args=dict(lambda_l1=100.0, adversarial=False),
    deviations=PRESETS["pix2pix"].deviations + ("The paper's 'L1' row of Table 1: G minimises 100 L1 alone; "
                                                "D is neither used nor trained.",))
PRESETS["pix2pix-cgan"] = replace(
    PRESETS["pix2pix"], summary="pix2pix ablation: cGAN alone (lambda 0), U-Net on edges2fashion",
    variant_args=dict(lambda_l1=0.0, adversarial=True),
    deviations=PRESETS["pix2pix"].deviations + ("The paper's 'cGAN' row of Table 1: no L1 term.",))
PRESETS["pix2pix-encdec"] = replace(
    PRESETS["pix2pix"], summary="pix2pix ablation: L1 + cGAN with an encoder-decoder G (no skips) on edges2fashion",
    model_args={**PRESETS["pix2pix"].model_args, "skips": False},
    deviations=PRESETS["pix2pix"].deviations + ("The paper's encoder-decoder (Figure 5, Table 3): the U-Net "
                                                "with its skip connections severed.",))
_CGAN_SGD = dict(name="sgd", lr=0.1, lr_decay=1.00004, min_lr=1e-6, momentum=0.5, final_momentum=0.7,
                 momentum_saturate=250)

PRESETS["cgan"] = Preset(
    summary="the conditional GAN paper's MNIST model: G(z, y) and D(x, y), MLPs with maxout D, dropout, momentum SGD",
    paper="Mirza & Osindero 2014 (arXiv 1411.1784), section 4.1; docs/cgan.md",
    model="cgan_mlp",
    model_args=dict(n_classes=10, g_z_units=200, g_y_units=1000, g_units=1200, g_irange=0.05, d_x_units=240,
                    d_x_pieces=5, d_y_units=50, d_y_pieces=5, d_units=240, d_pieces=4, d_irange=0.005, g_dropout=0.5,
                    d_dropout=0.5),
    variant="cgan", loss="non-saturating", prior="unit-cube", noise_dim=100, batch_size=100,
    optimizers={"D": _CGAN_SGD, "G": _CGAN_SGD},
    deviations=(
        "Algorithm 1 with k = 1 and the non-saturating G loss -log D(G(z|y)|y): the paper states neither its "
        "update order nor its G loss.",
        "G's fakes get the real minibatch's labels (in D's step and the following G step), so y follows the "
        "data's class frequencies in both terms of the value function; the paper does not say.",
        "Dropout 0.5 on the output of every hidden layer of G and D, none on pixels, noise or labels; the paper "
        "says only 'dropout with probability 0.5 ... to both the generator and discriminator'.",
        "Initial weights as the 2014 GAN code (G uniform +-0.05, D +-0.005, biases 0, G's output bias the logit "
        "of the mean pixel); the paper gives none.",
        "Momentum rises linearly from 0.5 to 0.7 by epoch 250 (the 2014 code's schedule); the paper says only "
        "'increased up to 0.7'.",
        "The learning rate is divided by 1.00004 after every update as printed (10x faster than the 2014 code's "
        "1.000004): it reaches the 1e-6 floor after about 288k updates, 576 epochs.",
        "G's label layer (y one-hot -> 1000) is an embedding, the rows of the one-hot layer's weights with its "
        "bias folded in: the same functions.",
        "Training runs for the epochs asked; the paper stopped at the best validation log-likelihood.",
        "Samples are drawn with G's dropout off (evaluation mode); the paper does not say. Early in training "
        "this G draws its variety from its dropout masks, so evaluation-mode samples vary little (docs/cgan.md "
        "section 3.3).",
        "Trained on MNIST training images 0-49,999 and validated on 50,000-59,999 (the 2014 code's split); the "
        "paper names no split.",
        "D's loss is Algorithm 1's sum -log D(x|y) - log(1 - D(G(z|y)|y)), without a factor 0.5.",
    ))

PRESETS["cdcgan"] = Preset(
    summary="conditional DCGAN at 28x28: the dcgan networks with the label beside every layer (one-hot and "
            "label maps), Adam",
    paper="Radford, Metz & Chintala 2016 and their conditional MNIST code (Newmu/dcgan_code "
          "mnist/train_cond_dcgan.py); docs/cgan.md section 5",
    model="cdcgan",
    model_args=dict(n_classes=10, g_channels=(128, 64), d_channels=(64, 128), std=0.02, slope=0.2),
    variant="cgan", loss="non-saturating", prior="uniform", noise_dim=100, batch_size=128,
    optimizers={"D": dict(name="adam", lr=2e-4, betas=(0.5, 0.999)), "G": dict(name="adam", lr=2e-4, betas=(0.5, 0.999))},
    deviations=(
        "The dcgan preset's networks (G 128 -> 64 -> 1 channels, D 64 -> 128, 4x4 kernels, biases kept) with the "
        "one-hot label concatenated before every layer with weights, as label maps beside feature maps; the "
        "authors' conditional MNIST nets add a 1024-unit fully connected layer to G and D (--preset cdcgan-fc) "
        "and use 5x5 kernels without biases.",
        "Adam 2e-4, beta1 0.5, batch 128 at a constant rate, as the dcgan preset; the authors' code adds L2 weight "
        "decay 2.5e-5 and decays the rate linearly to 0 over a second 100 epochs (train --lr-decay-epochs N "
        "decays it over the last N epochs).",
        "Algorithm 1 with k = 1: every minibatch updates D, then G; the authors' code updates only one of them "
        "per minibatch, in turn.",
        "Batch normalisation samples with running statistics (evaluation mode); the authors' code used batch "
        "statistics also when sampling.",
        "G's fakes get the real minibatch's labels, as in the authors' code; z is uniform on [-1, 1] in 100 "
        "dimensions and G's output a sigmoid on [0, 1], as there.",
    ))

PRESETS["cdcgan-fc"] = replace(
    PRESETS["cdcgan"],
    summary="conditional DCGAN with the DCGAN authors' conditional MNIST layer plan: the cdcgan networks plus a "
            "1024-unit fully connected layer in G and in D",
    paper="Radford, Metz & Chintala 2016, their conditional MNIST code (Newmu/dcgan_code "
          "mnist/train_cond_dcgan.py); docs/cgan.md section 5",
    model_args=dict(PRESETS["cdcgan"].model_args, fc_units=1024),
    deviations=(
        "The authors' layer plan (G: [z, y] -> FC 1024 -> FC 128x7x7 -> deconv 64 -> deconv 1; D: conv 64 -> conv "
        "128 -> FC 1024 -> logit; BN on every hidden layer but D's first; the label beside every layer) with the "
        "dcgan preset's 4x4 kernels (stride 2, padding 1) where the authors use 5x5, and biases kept.",
    ) + PRESETS["cdcgan"].deviations[1:])

#: What a run may override on top of its preset (``None``: the preset's value).
OVERRIDES = ("dataset", "loss", "update", "k", "batch_size", "lr", "lr_d", "lr_g", "optimizer", "prior")


def get_preset(name) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]


def resolve(name, **overrides) -> Preset:
    """The preset ``name`` with the run's ``overrides`` applied (keys of
    :data:`OVERRIDES`; ``None`` keeps the preset's value)."""
    unknown = set(overrides) - set(OVERRIDES)
    if unknown:
        raise ValueError(f"unknown override(s) {sorted(unknown)}; known: {', '.join(OVERRIDES)}")
    p = get_preset(name)
    o = {k: v for k, v in overrides.items() if v is not None}
    changes = {k: o[k] for k in ("dataset", "loss", "k", "batch_size", "prior") if k in o}
    if "loss" in changes:
        changes["loss"] = losses.get(changes["loss"]).name
    if "update" in o:
        if p.variant not in ("gan", "simultaneous"):
            raise ValueError(f"--update applies to the MLP GAN presets, not to variant {p.variant!r}")
        if o["update"] not in ("simultaneous", "alternating"):
            raise ValueError(f"update must be 'simultaneous' or 'alternating', got {o['update']!r}")
        changes["variant"] = "simultaneous" if o["update"] == "simultaneous" else "gan"
    variant, k = changes.get("variant", p.variant), int(changes.get("k", p.k))
    if variant == "simultaneous" and k != 1:
        raise ValueError("simultaneous updates need k = 1; use --update alternating for k > 1")
    loss = changes.get("loss", p.loss)
    if p.variant in ("gan", "simultaneous") and (variant == "gan" or loss not in ("non-saturating", "minimax")):
        # the 0.5 belongs to the authors' simultaneous cross-entropy update only;
        # Algorithm 1 (alternating) and the later losses have none
        changes["d_scale"] = 1.0
    opts = {}
    for net, spec in p.optimizers.items():
        spec = dict(spec)
        if "optimizer" in o and o["optimizer"] != spec["name"]:
            if o["optimizer"] not in OPTIMIZER_DEFAULTS:
                raise ValueError(f"unknown optimizer {o['optimizer']!r}; choose one of "
                                 f"{', '.join(OPTIMIZER_DEFAULTS)}")
            spec = dict(OPTIMIZER_DEFAULTS[o["optimizer"]])
        if "lr" in o:
            spec["lr"] = float(o["lr"])
        if f"lr_{net.lower()}" in o:  # one network's rate (lr_d, lr_g), e.g. InfoGAN's faster G
            spec["lr"] = float(o[f"lr_{net.lower()}"])
        opts[net] = spec
    return replace(p, optimizers=opts, **changes)


def build_optimizer(spec, module, *, steps_per_epoch, fast_update=True, linear_decay=None):
    """An optimiser over ``module`` from a spec ``{"name": …, …}``; SGD's
    ``lr_decay`` and ``final_momentum`` make the paper's schedules.

    ``linear_decay = (first, last)`` (epochs, 0-based ``first``) multiplies
    the learning rate by :class:`~scratchgan.nn.optim.LinearDecay`: full up to
    epoch ``first``, falling to 0 at the end of epoch ``last`` (the DCGAN
    authors' schedule; ``train --lr-decay-epochs``)."""
    _check_optimizer(spec, "optimizer")
    args = {k: v for k, v in spec.items() if k != "name"}

    def decayed(lr):
        if linear_decay is None:
            return lr
        first, last = linear_decay
        return optim.LinearDecay(lr, first * steps_per_epoch, last * steps_per_epoch)
    if spec["name"] == "adam":
        betas = tuple(args.pop("betas", (0.5, 0.999)))
        args["lr"] = decayed(args["lr"])
        return (fast.Adam if fast_update else optim.Adam)(module, betas=betas, **args)
    if spec["name"] == "rmsprop":
        args["lr"] = decayed(args["lr"])
        return optim.RMSProp(module, **args)
    lr, mu = args.pop("lr"), args.pop("momentum", 0.0)
    if "lr_decay" in args:
        lr = optim.ExponentialDecay(lr, args.pop("lr_decay"), args.pop("min_lr", 1e-6))
    lr = decayed(lr)
    if "final_momentum" in args:
        mu = optim.LinearMomentum(mu, args.pop("final_momentum"), args.pop("momentum_saturate", 250),
                                  steps_per_epoch)
    cls = fast.SGD if fast_update else optim.SGD
    return cls(module, lr=lr, momentum=mu, **args)


def check_lr_decay(preset: Preset) -> None:
    """Refuse ``--lr-decay-epochs`` where D's updates per epoch are not ``k``
    per iteration: the WGAN authors' critic schedule (``schedule='authors'``,
    100 critic steps for the first 25 iterations and every 500th)."""
    if preset.variant_args.get("schedule") == "authors":
        raise ValueError("--lr-decay-epochs counts k critic updates per iteration; the WGAN authors' critic "
                         "schedule (schedule='authors', 100 steps early on) does not, so the two cannot be "
                         "combined")


def build_gan(preset: Preset, *, x_shape, pixel_mean=None, steps_per_epoch=500, seed=0, device="cpu",
              fast_layers=True, linear_decay=None, batch_split=None):
    """The variant instance for ``preset`` (networks initialised on the host
    from ``seed``, then moved to ``device``).

    ``steps_per_epoch`` (G updates per epoch) drives SGD's momentum schedule
    and ``linear_decay`` (see :func:`build_optimizer`) both learning rates.
    ``batch_split`` (an int > 1, CPU only) runs every network on that many
    slices of each batch in as many threads (:class:`scratchgan.nn.batch_split.BatchSplit`:
    the same results to rounding; networks without batch norm or dropout).
    """
    if linear_decay is not None:
        check_lr_decay(preset)
    init_rng = np.random.default_rng(np.random.SeedSequence([seed, 2014]))
    nets = get_model(preset.model)(tuple(x_shape), noise_dim=preset.noise_dim, pixel_mean=pixel_mean,
                                   rng=init_rng, fast_layers=fast_layers, **preset.model_args)
    if batch_split is not None and positive_int("batch_split", batch_split) > 1:
        if get_device(device).is_gpu:
            raise ValueError("batch_split is for the CPU (threads); on a GPU one kernel fills the device")
        check_batch_split(preset, nets)
        nets = {name: BatchSplit(net, batch_split) for name, net in nets.items()}
    # D makes k updates per iteration; its momentum must still follow the epoch
    # (docs/paper.md §3.4). Its learning rate decays per update of D, as
    # pylearn2's ExponentialDecay does: k times as fast as G's when k > 1.
    d_opt = build_optimizer(preset.optimizers["D"], nets["D"], steps_per_epoch=steps_per_epoch * preset.k,
                            fast_update=fast_layers, linear_decay=linear_decay)
    g_opt = build_optimizer(preset.optimizers["G"], nets["G"], steps_per_epoch=steps_per_epoch,
                            fast_update=fast_layers, linear_decay=linear_decay)
    loss = losses.get(preset.loss, d_scale=preset.d_scale)
    cls = get_variant(preset.variant)
    prior = NoisePrior(preset.noise_dim, preset.prior) if preset.noise_dim else None  # 0: G takes no z
    return cls(nets["G"], nets["D"], d_opt, g_opt, prior, loss=loss, k=preset.k, seed=seed, device=device,
               **preset.variant_args)


def check_batch_split(preset: Preset, nets=None):
    """A ValueError naming the network and the layer if ``preset``'s networks
    cannot run on slices of a batch (batch norm, dropout); ``nets`` as built,
    or built here on the host."""
    if nets is None:
        from .models import sample_shape
        from .paired import SIDE, TASKS

        side = SIDE if preset.dataset in TASKS else 28
        nets = get_model(preset.model)(sample_shape(preset.model, (1, side, side)), noise_dim=preset.noise_dim,
                                       rng=0, **preset.model_args)
    for name, net in nets.items():
        why = why_not_split(net)
        if why:
            raise ValueError(f"the {preset.model} model's {name} cannot run on slices of a batch: {why}")


def describe(name) -> str:
    """A few lines on a preset: what, after which paper, its settings, its deviations."""
    p = get_preset(name)
    lines = [f"{name}: {p.summary}", f"  paper: {p.paper}"]
    for f in fields(p):
        if f.name not in ("summary", "paper", "deviations"):
            lines.append(f"  {f.name} = {getattr(p, f.name)}")
    lines.append("  differs from the paper:")
    lines += [f"    - {d}" for d in p.deviations]
    return "\n".join(lines)
