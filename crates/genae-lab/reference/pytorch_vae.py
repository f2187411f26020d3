#!/usr/bin/env python3
"""The PyTorch side of `cargo xtask compare vae`: the recipe of
`crates/genae-lab/configs/fashion-mnist-vae.toml`, written the way a PyTorch user would write it.

Recipe (the same as genae's, see crates/genae-zoo/src/{vae,mlp}.rs and genae-estimators):

- MLP VAE 784 -> 300 -> 300 -> (mean, log-variance of 40) with ReLU after every trunk layer;
  decoder 40 -> 300 -> 300 -> 784 Bernoulli logits (ReLU between layers, none after the last);
  prior N(0, I).
- Loss: minus the single-sample reparameterised ELBO, KL(q(z|x) || N(0, I)) in closed form,
  summed over pixels / latent dimensions, averaged over the batch.
- torch.optim.Adam, lr 1e-3, betas (0.9, 0.999), eps 1e-8 (its defaults); batches of 100 in a
  fresh random order every epoch (the last, smaller batch kept).
- Fashion-MNIST read straight from the IDX gz files (no torchvision, no numpy): the first
  `--train-size` / `--test-size` images (0: all). The training set is binarised dynamically (a
  fresh Bernoulli draw of every batch), the test set statically, once, with a fixed seed.
- `--draws genae` (the default): the batch order and every binarisation are genae's own draws,
  reproduced bit for bit (ChaCha8, see "genae's data draws" below), so that with the same data
  seed both implementations see the same binarised batches in the same order and are tested on
  the same binarised test images. Over 6 static binarisations of the test set, one trained
  model's L_1000 on the first 1 000 test images had a standard deviation of 0.21 nats and its
  test ELBO (10 000 images) one of 0.15 (docs/results.md): as much as the differences this
  script is meant to find. `--draws torch`: torch's generator instead (the same distributions, other numbers).
- Parameter initialisation: PyTorch's own `nn.Linear` default (what a PyTorch user gets without
  asking): weight [out, in] ~ U(-1/sqrt(in), 1/sqrt(in)) (`kaiming_uniform_(a=sqrt(5))`), bias
  [out] ~ U(-1/sqrt(in), 1/sqrt(in)). genae-zoo creates its layers with the same distributions
  (`genae_zoo::init`). `--init tch` instead reproduces tch 0.24's `nn::linear` default
  (`Init::Kaiming { Uniform, FanIn, ReLU }`: weight bound sqrt(6 / in), sqrt(6) times wider;
  each layer's bias drawn before its weight), which genae used before; it is kept for the
  diagnosis written up in docs/results.md ("Parity with PyTorch at its defaults").
- Randomness: `--seed` seeds torch's global generator (initialisation, reparameterisation
  noise), like genae's `seed` (the same distributions, not the same numbers); the batch order and
  the binarisations depend only on `--data-seed` (default 0), like genae's `data.seed`.
- Evaluation: the test ELBO (one sample per image, batches of 1000) after every epoch, and after
  training the IWAE bound L_k = log (1/k) sum_i p(x, z_i) / q(z_i | x), z_i ~ q(z | x), on the
  first `--eval-images` test images, under no_grad, at most 500 (image, sample) pairs per
  decoder pass, log-sum-exp in float64.

Runs on `--device` (default `cpu`; `cuda` or `cuda:N` for a GPU) with
torch.set_num_threads(os.cpu_count()) (what libtorch uses by default) and writes a JSON report
(`--out`, else stdout):

  {"implementation": "pytorch", ..., "test": {"elbo", "reconstruction", "kl",
   "log_likelihood": {"k", "n_images", "value", "seconds"}},
   "train": {"epochs", "steps", "seconds", "examples_per_s"}, "eval": {"seconds"},
   "peak_rss_mb"}  (on CUDA also "device_name" and "peak_cuda_mb", torch.cuda.max_memory_allocated)

train.seconds / examples_per_s cover training steps only (evaluation excluded; with `--draws
genae` each epoch's batches are drawn before its clock starts, whereas genae draws them on a
prefetch thread while its clock runs); eval.seconds is the L_k evaluation. On CUDA the model, the
test set and the evaluation live on the GPU, each training batch is drawn on the CPU and copied to
the GPU inside the clock, and every clock is read after torch.cuda.synchronize(). Run it with the
project's venv:

  .genae/venv/bin/python -W ignore crates/genae-lab/reference/pytorch_vae.py --epochs 1 \\
      --train-size 6000 --test-size 1000 --k 100 --eval-images 100 --out /tmp/vae.json
"""

import argparse
import gzip
import json
import math
import os
import platform
import resource
import struct
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

LOG_2PI = math.log(2.0 * math.pi)
# Seed of the one static binarisation of the test set with `--draws torch` (fixed: the same test
# set for every --seed).
TEST_BINARIZATION_SEED = 0x7465_7374
# Most (image, sample) pairs per decoder pass in the L_k evaluation.
LK_CHUNK = 500


def read_idx_images(path, limit):
    """The images of an IDX3 gz file as a uint8 tensor [N, rows * cols] (the first `limit`, 0: all)."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, n, rows, cols = struct.unpack(">IIII", data[:16])
    if magic != 0x0803:
        raise SystemExit(f"{path}: not an IDX3 uint8 image file (magic {magic:#x})")
    if limit:
        n = min(n, limit)
    size = n * rows * cols
    if len(data) < 16 + size:
        raise SystemExit(f"{path}: truncated ({len(data) - 16} pixel bytes, {size} wanted)")
    pixels = torch.frombuffer(bytearray(data[16 : 16 + size]), dtype=torch.uint8)
    return pixels.view(n, rows * cols)


# --- genae's data draws (`--draws genae`) ------------------------------------------------------
#
# genae draws the batch order and the Bernoulli binarisations from ChaCha8 streams (genae-data,
# rand_chacha 0.3 / rand_core 0.6): `ChaCha8Rng::seed_from_u64(seed)` (the 32-byte key from
# PCG32 steps of `seed`), `set_stream(stream)` (the 64-bit nonce), then the plain ChaCha8 key
# stream, read as little-endian u32 words. What reads it:
# - `permutation(n, seed, stream)`: Fisher-Yates from i = n-1 down to 1, j = r % (i + 1) for a
#   u64 r (low word first) below the largest multiple of i + 1 (rejection), swap(i, j);
# - `binarize_in_place`: each pixel v takes two bytes (u16, little-endian) u and becomes 1 when
#   u * 255 < v * 65536; the bytes come in 512-byte `fill_bytes` calls of 256 pixels (a call
#   with an odd pixel count would waste the rest of its last word; 28x28 batches never do).
# genae-lab: the test set is binarised once from `seed_from_u64(data_seed ^ GENAE_TEST_DRAW)`;
# epoch e (from 1) visits the images in `permutation(n, data_seed, e)` order, in batches, and
# binarises them from `seed_from_u64(data_seed ^ GENAE_BINARIZE_SEED)` with stream e.
# crates/genae-data/src/transforms.rs pins values these functions must give
# (`draws_python_reproduces`), and `--check-draws` checks this code against the same values.
MASK32 = 0xFFFF_FFFF
MASK64 = 0xFFFF_FFFF_FFFF_FFFF
# genae-lab's seed of the test set's binarisation (engine.rs TEST_DRAW).
GENAE_TEST_DRAW = 0x7465_7374_0000_0000
# genae-data's seed offset of the dynamic binarisation (batch.rs).
GENAE_BINARIZE_SEED = 0x6269_6E61_7269_7A65
CHACHA_CONSTANTS = (0x61707865, 0x3320646E, 0x79622D32, 0x6B206574)
# Blocks (64 bytes) computed per vectorised ChaCha8 call.
CHACHA_BATCH_BLOCKS = 1 << 16


def pcg32_key(state):
    """The 8 key words of rand_core 0.6's `seed_from_u64(state)`."""
    words = []
    for _ in range(8):
        state = (state * 6364136223846793005 + 11634580027462260723) & MASK64
        xorshifted = (((state >> 18) ^ state) >> 27) & MASK32
        rot = state >> 59
        words.append(((xorshifted >> rot) | (xorshifted << (32 - rot))) & MASK32)
    return words


def _rotl(x, n):
    return ((x << n) & MASK32) | (x >> (32 - n))


def chacha8_blocks(key, stream, first_block, n_blocks):
    """ChaCha8 key-stream words of blocks first_block.. (64-bit counter, 64-bit nonce `stream`)
    as an int64 tensor [n_blocks * 16] of u32 values, in stream order."""
    counter = torch.arange(first_block, first_block + n_blocks, dtype=torch.int64)
    full = lambda v: torch.full((n_blocks,), v, dtype=torch.int64)
    state = [full(c) for c in CHACHA_CONSTANTS] + [full(k) for k in key] + [
        counter & MASK32,
        counter >> 32,
        full(stream & MASK32),
        full(stream >> 32),
    ]
    x = [t.clone() for t in state]

    def quarter(a, b, c, d):
        x[a] = (x[a] + x[b]) & MASK32
        x[d] = _rotl(x[d] ^ x[a], 16)
        x[c] = (x[c] + x[d]) & MASK32
        x[b] = _rotl(x[b] ^ x[c], 12)
        x[a] = (x[a] + x[b]) & MASK32
        x[d] = _rotl(x[d] ^ x[a], 8)
        x[c] = (x[c] + x[d]) & MASK32
        x[b] = _rotl(x[b] ^ x[c], 7)

    for _ in range(4):  # 8 rounds: 4 double rounds
        quarter(0, 4, 8, 12)
        quarter(1, 5, 9, 13)
        quarter(2, 6, 10, 14)
        quarter(3, 7, 11, 15)
        quarter(0, 5, 10, 15)
        quarter(1, 6, 11, 12)
        quarter(2, 7, 8, 13)
        quarter(3, 4, 9, 14)
    out = torch.stack([(xi + si) & MASK32 for xi, si in zip(x, state)], 1)  # [n_blocks, 16]
    return out.reshape(-1)


class GenaeRng:
    """`ChaCha8Rng::seed_from_u64(seed)` with `set_stream(stream)`, read word by word."""

    def __init__(self, seed, stream=0):
        self.key = pcg32_key(seed & MASK64)
        self.stream = stream & MASK64
        self.next_block = 0
        self.buffer = torch.empty(0, dtype=torch.int64)
        self.pos = 0

    def words(self, n):
        """The next n u32 words (int64 tensor)."""
        parts = []
        while n > 0:
            if self.pos == self.buffer.numel():
                blocks = max(CHACHA_BATCH_BLOCKS, -(-n // 16))
                self.buffer = chacha8_blocks(self.key, self.stream, self.next_block, blocks)
                self.next_block += blocks
                self.pos = 0
            take = min(n, self.buffer.numel() - self.pos)
            parts.append(self.buffer[self.pos : self.pos + take])
            self.pos += take
            n -= take
        return torch.cat(parts) if len(parts) != 1 else parts[0]


def genae_permutation(n, seed, stream):
    """genae-data's `permutation(n, seed, stream)` as a list."""
    rng = GenaeRng(seed, stream)
    draws = rng.words(2 * max(n - 1, 0)).tolist()
    at = 0
    order = list(range(n))
    for i in range(n - 1, 0, -1):
        bound = i + 1
        zone = MASK64 - MASK64 % bound
        while True:
            if at + 2 > len(draws):
                draws += rng.words(2).tolist()
            r = draws[at] | (draws[at + 1] << 32)
            at += 2
            if r < zone:
                break
        j = r % bound
        order[i], order[j] = order[j], order[i]
    return order


def genae_binarize(pixels, rng):
    """genae-data's `binarize_in_place` of uint8 pixels (any shape) drawing from `rng`: a 0/1
    uint8 tensor of the same shape."""
    flat = pixels.reshape(-1)
    n = flat.numel()
    full, rest = divmod(n, 256)
    # Whole words per call: an odd last call leaves the upper half of its last word unused.
    words = rng.words(full * 128 + (2 * rest + 3) // 4)
    u16 = torch.stack([words & 0xFFFF, words >> 16], 1).reshape(-1)[:n]
    return (u16 * 255 < flat.to(torch.int64) * 65536).to(torch.uint8).view(pixels.shape)


def genae_epoch(train_u8, data_seed, epoch, batch_size):
    """Epoch `epoch`'s training images as genae draws them: binarised (0/1 uint8) and in batch
    order, one [N, D] tensor whose consecutive `batch_size` rows are the batches."""
    order = torch.tensor(genae_permutation(train_u8.shape[0], data_seed, epoch))
    rng = GenaeRng(data_seed ^ GENAE_BINARIZE_SEED, epoch)
    out = torch.empty_like(train_u8)
    for start in range(0, order.numel(), batch_size):
        idx = order[start : start + batch_size]
        out[start : start + idx.numel()] = genae_binarize(train_u8[idx], rng)
    return out


def _draws_digest(bits):
    """Sum of 31 i + 1 over the pixels i drawn as 1 (the digest genae-data's test pins)."""
    i = torch.arange(bits.numel(), dtype=torch.int64)
    return int(((31 * i + 1) * bits.reshape(-1).to(torch.int64)).sum())


def check_draws():
    """Checks this code against the values genae-data's `draws_python_reproduces` test pins
    (crates/genae-data/src/transforms.rs); SystemExit when they differ."""
    got = {
        "permutation(10, 7, 3)": genae_permutation(10, 7, 3),
        "permutation(60000, 0, 1)[:4]": genae_permutation(60000, 0, 1)[:4],
    }
    ramp = torch.arange(777, dtype=torch.int64).remainder(256).to(torch.uint8)
    got["ramp, seed 11"] = _draws_digest(genae_binarize(ramp, GenaeRng(11)))
    rng = GenaeRng(5, 2)  # two calls on one stream, the first with an odd pixel count
    first = genae_binarize((torch.arange(301) * 7 % 256).to(torch.uint8), rng)
    second = genae_binarize((torch.arange(300) * 11 % 256).to(torch.uint8), rng)
    got["two calls, seed 5, stream 2"] = [_draws_digest(first), _draws_digest(second)]
    expected = {
        "permutation(10, 7, 3)": [1, 6, 3, 5, 0, 4, 7, 2, 8, 9],
        "permutation(60000, 0, 1)[:4]": [42637, 24822, 25612, 14814],
        "ramp, seed 11": 4962115,
        "two calls, seed 5, stream 2": [739842, 658453],
    }
    wrong = {k: (got[k], v) for k, v in expected.items() if got[k] != v}
    if wrong:
        raise SystemExit(f"genae's draws not reproduced (got, genae): {wrong}")


class TchLinear(nn.Module):
    """A linear layer initialised exactly as tch 0.24's `nn::linear(.., Default::default())`
    (`--init tch` only; not PyTorch's default)."""

    def __init__(self, in_dim, out_dim):
        super().__init__()
        bias_bound = 1.0 / math.sqrt(in_dim)
        weight_bound = math.sqrt(3.0) * math.sqrt(2.0) / math.sqrt(in_dim)
        # tch creates the bias first, then the weight.
        self.bias = nn.Parameter(torch.empty(out_dim).uniform_(-bias_bound, bias_bound))
        self.weight = nn.Parameter(
            torch.empty(out_dim, in_dim).uniform_(-weight_bound, weight_bound)
        )

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)


class Vae(nn.Module):
    """Gaussian MLP encoder, N(0, I) prior, Bernoulli MLP decoder."""

    def __init__(self, input_dim=784, hidden=(300, 300), latent_dim=40, init="pytorch"):
        super().__init__()
        linear = {"pytorch": nn.Linear, "tch": TchLinear}[init]
        widths = [input_dim, *hidden]
        self.trunk = nn.ModuleList(linear(a, b) for a, b in zip(widths, widths[1:]))
        self.mean = linear(widths[-1], latent_dim)
        self.log_var = linear(widths[-1], latent_dim)
        widths = [latent_dim, *reversed(hidden), input_dim]
        self.decoder = nn.ModuleList(linear(a, b) for a, b in zip(widths, widths[1:]))

    def encode(self, x):
        h = x
        for layer in self.trunk:
            h = F.relu(layer(h))
        return self.mean(h), self.log_var(h)

    def decode(self, z):
        h = z
        last = len(self.decoder) - 1
        for i, layer in enumerate(self.decoder):
            h = layer(h)
            if i < last:
                h = F.relu(h)
        return h


def elbo_terms(model, x):
    """Per-example (elbo, reconstruction, kl), one reparameterised sample, analytic KL."""
    mean, log_var = model.encode(x)
    z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
    logits = model.decode(z)
    rec = -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)
    kl = 0.5 * (mean.square() + log_var.exp() - log_var - 1.0).sum(-1)
    return rec - kl, rec, kl


@torch.no_grad()
def evaluate_elbo(model, x, batch_size):
    sums = torch.zeros(3, dtype=torch.float64, device=x.device)
    for start in range(0, x.shape[0], batch_size):
        terms = elbo_terms(model, x[start : start + batch_size])
        sums += torch.stack([t.sum(dtype=torch.float64) for t in terms])
    elbo, rec, kl = (sums / max(x.shape[0], 1)).tolist()
    return {"elbo": elbo, "reconstruction": rec, "kl": kl}


@torch.no_grad()
def iwae_log_likelihood(model, x, k):
    """Mean over the images of L_k, at most LK_CHUNK (image, sample) pairs per decoder pass."""
    n, d_x = x.shape
    images_per_pass = max(1, LK_CHUNK // k)
    samples_per_pass = min(k, LK_CHUNK)
    total = 0.0
    for start in range(0, n, images_per_pass):
        xb = x[start : start + images_per_pass]  # [m, D]
        m = xb.shape[0]
        mean, log_var = model.encode(xb)  # [m, d]
        std = torch.exp(0.5 * log_var)
        log_w = []
        for s in range(0, k, samples_per_pass):
            c = min(samples_per_pass, k - s)
            eps = torch.randn(c, m, mean.shape[1], device=mean.device)
            z = mean + std * eps  # [c, m, d]
            logits = model.decode(z.view(c * m, -1)).view(c, m, d_x)
            log_px = -F.binary_cross_entropy_with_logits(
                logits, xb.expand(c, m, d_x), reduction="none"
            ).sum(-1)
            log_pz = -0.5 * (z.square() + LOG_2PI).sum(-1)
            log_qz = -0.5 * (eps.square() + log_var + LOG_2PI).sum(-1)
            log_w.append(log_px + log_pz - log_qz)  # [c, m]
        log_w = torch.cat(log_w, 0).double()  # [k, m]
        total += (torch.logsumexp(log_w, 0) - math.log(k)).sum().item()
    return total / max(n, 1)


def parse_device(text):
    """`--device`: `cpu`, `cuda` or `cuda:N`, checked against what this torch can reach
    (SystemExit with the reason, not a traceback, when it cannot)."""
    try:
        device = torch.device(text)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda") or (
        device.type == "cpu" and device.index not in (None, 0)
    ):
        raise SystemExit(f"--device {text}: expected cpu, cuda or cuda:N")
    if device.type == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        why = (
            "this torch is built without CUDA"
            if torch.version.cuda is None
            else f"torch.cuda.is_available() is false (torch built for CUDA {torch.version.cuda}, "
            "no usable GPU or driver)"
        )
        raise SystemExit(f"--device {text}: no CUDA here: {why}")
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise SystemExit(f"--device {text}: only {count} CUDA device(s) here")
    return torch.device("cuda", torch.cuda.current_device() if device.index is None else device.index)


def sync(device):
    """Waits for the device's queued work (CUDA), so that a clock read after it is honest."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--seed", type=int, default=0, help="initialisation and sampling")
    p.add_argument("--data-seed", type=int, default=0, help="batch order and binarisation")
    p.add_argument("--train-size", type=int, default=0, help="the first N training images (0: all)")
    p.add_argument("--test-size", type=int, default=0, help="the first N test images (0: all)")
    p.add_argument("--k", type=int, default=5000, help="importance samples of L_k")
    p.add_argument("--eval-images", type=int, default=1000, help="test images L_k averages over")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--eval-batch-size", type=int, default=1000)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--threads", type=int, default=0, help="intra-op threads (0: one per CPU)")
    p.add_argument(
        "--draws",
        choices=("genae", "torch"),
        default="genae",
        help="batch order and binarisations: genae's own ChaCha8 draws (the same data as genae's "
        "run with the same data seed) or torch's generator",
    )
    p.add_argument("--check-draws", action="store_true", help="check the genae draws and exit")
    p.add_argument(
        "--init",
        choices=("pytorch", "tch"),
        default="pytorch",
        help="layer initialisation: PyTorch's nn.Linear default, or tch 0.24's nn::linear default",
    )
    p.add_argument(
        "--device",
        default="cpu",
        help="cpu (default), cuda or cuda:N: where the model, batches and evaluation run",
    )
    p.add_argument("--out", help="write the JSON report here (default: stdout)")
    args = p.parse_args()
    if args.check_draws:
        check_draws()
        print("genae draws reproduced", file=sys.stderr)
        return
    if args.epochs < 1 or args.k < 1 or args.eval_images < 0 or args.batch_size < 1:
        p.error("--epochs, --k and --batch-size must be at least 1, --eval-images at least 0")
    if args.threads < 0:
        p.error("--threads must be at least 0")
    device = parse_device(args.device)

    threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    torch.manual_seed(args.seed)

    # Data: uint8 in memory; [0, 1] floats only per batch.
    train_u8 = read_idx_images(
        os.path.join(args.data_dir, "train-images-idx3-ubyte.gz"), args.train_size
    )
    test_u8 = read_idx_images(
        os.path.join(args.data_dir, "t10k-images-idx3-ubyte.gz"), args.test_size
    )
    if args.draws == "genae":
        check_draws()
        test_x = genae_binarize(test_u8, GenaeRng(args.data_seed ^ GENAE_TEST_DRAW)).float()
    else:
        test_gen = torch.Generator().manual_seed(TEST_BINARIZATION_SEED)
        test_x = torch.bernoulli(test_u8.float() / 255.0, generator=test_gen)
    test_x = test_x.to(device)
    data_gen = torch.Generator().manual_seed(args.data_seed)
    n_train, input_dim = train_u8.shape

    model = Vae(input_dim=input_dim, init=args.init).to(device)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=args.learning_rate, betas=(0.9, 0.999), eps=1e-8
    )
    print(
        f"pytorch {torch.__version__}: vae on fashion-mnist ({n_train} train / {test_x.shape[0]} "
        f"test, binarize dynamic, {args.draws} draws) on {device}, {threads} threads, {args.epochs} epochs, "
        f"seed {args.seed}, {args.init} init",
        file=sys.stderr,
    )

    steps = 0
    train_seconds = 0.0
    examples = 0
    test_metrics = {}
    for epoch in range(1, args.epochs + 1):
        if args.draws == "genae":
            # Drawn before the clock starts (genae draws on its prefetch thread, on its clock).
            epoch_x = genae_epoch(train_u8, args.data_seed, epoch, args.batch_size)
        else:
            order = torch.randperm(n_train, generator=data_gen)
        sync(device)
        started = time.perf_counter()
        sums = torch.zeros(3, dtype=torch.float64, device=device)
        for start in range(0, n_train, args.batch_size):
            if args.draws == "genae":
                x = epoch_x[start : start + args.batch_size].to(device).float()
            else:
                idx = order[start : start + args.batch_size]
                x = torch.bernoulli(train_u8[idx].float().div_(255.0), generator=data_gen)
                x = x.to(device)
            elbo, rec, kl = elbo_terms(model, x)
            loss = -elbo.mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                sums += torch.stack(
                    [elbo.sum(dtype=torch.float64), rec.sum(dtype=torch.float64),
                     kl.sum(dtype=torch.float64)]
                )
            steps += 1
        sync(device)
        seconds = time.perf_counter() - started
        train_seconds += seconds
        examples += n_train
        train_elbo = sums[0].item() / n_train
        if not math.isfinite(train_elbo):
            raise SystemExit(f"the training ELBO became {train_elbo} at epoch {epoch}")
        eval_started = time.perf_counter()
        test_metrics = evaluate_elbo(model, test_x, args.eval_batch_size)
        sync(device)
        print(
            f"epoch {epoch:>3}/{args.epochs}: train ELBO {train_elbo:9.3f}  test ELBO "
            f"{test_metrics['elbo']:9.3f} (rec {test_metrics['reconstruction']:9.3f}, KL "
            f"{test_metrics['kl']:7.3f})  {seconds:6.1f} s  {n_train / seconds:7.0f} ex/s  "
            f"(eval {time.perf_counter() - eval_started:.1f} s)",
            file=sys.stderr,
        )

    n_images = min(args.eval_images, test_x.shape[0])
    sync(device)
    eval_started = time.perf_counter()
    lk = iwae_log_likelihood(model, test_x[:n_images], args.k) if n_images else float("nan")
    sync(device)
    eval_seconds = time.perf_counter() - eval_started
    print(
        f"L_{args.k} on {n_images} test images: {lk:.3f} nats ({eval_seconds:.1f} s)",
        file=sys.stderr,
    )

    report = {
        "implementation": "pytorch",
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "model": "vae",
        "dataset": "fashion-mnist",
        "seed": args.seed,
        "init": args.init,
        "draws": args.draws,
        "data_seed": args.data_seed,
        "n_train": n_train,
        "n_test": int(test_x.shape[0]),
        "test": {
            **test_metrics,
            "log_likelihood": {
                "k": args.k,
                "n_images": n_images,
                "value": lk if math.isfinite(lk) else None,
                "seconds": eval_seconds,
            },
        },
        "train": {
            "epochs": args.epochs,
            "steps": steps,
            "seconds": train_seconds,
            "examples_per_s": examples / train_seconds,
        },
        "eval": {"seconds": eval_seconds},
        # ru_maxrss is in KiB on Linux.
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }
    if device.type == "cuda":
        report["device_name"] = torch.cuda.get_device_name(device)
        report["peak_cuda_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    text = json.dumps(report, indent=2)
    if args.out:
        tmp = args.out + ".tmp"
        with open(tmp, "w") as f:
            f.write(text + "\n")
        os.replace(tmp, args.out)
        print(f"report: {args.out}", file=sys.stderr)
    else:
        print(text)


if __name__ == "__main__":
    main()
