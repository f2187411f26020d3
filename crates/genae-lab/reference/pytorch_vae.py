#!/usr/bin/env python3
"""The PyTorch side of `cargo xtask compare vae`: the recipe of
`crates/genae-lab/configs/fashion-mnist-vae.toml`, written the way a PyTorch user would write it.

Recipe (the same as genae's, see crates/genae-zoo/src/{vae,mlp}.rs and genae-estimators):

- MLP VAE 784 -> 300 -> 300 -> (mean, log-variance of 40) with ReLU after every trunk layer;
  decoder 40 -> 300 -> 300 -> 784 Bernoulli logits (ReLU between layers, none after the last);
  prior N(0, I).
- Loss: minus the single-sample reparameterised ELBO, KL(q(z|x) || N(0, I)) in closed form,
  summed over pixels / latent dimensions, averaged over the batch.
- Adam, lr 1e-3, betas (0.9, 0.999), eps 1e-8 (PyTorch's and tch's defaults); batches of 100 in
  a fresh random order every epoch (the last, smaller batch kept).
- Fashion-MNIST read straight from the IDX gz files (no torchvision, no numpy): the first
  `--train-size` / `--test-size` images (0: all). The training set is binarised dynamically (a
  fresh Bernoulli draw of every batch), the test set statically, once, with a fixed seed.
- Parameter initialisation as tch's `nn::linear` with its default `LinearConfig` (tch 0.24,
  src/nn/linear.rs and src/nn/init.rs), reproduced explicitly below because it is NOT
  PyTorch's `nn.Linear` default:
    weight [out, in] ~ U(-b_w, b_w), b_w = sqrt(3) * gain / sqrt(fan_in) with gain = sqrt(2)
      (`Init::Kaiming { Uniform, FanIn, ReLU }`), i.e. b_w = sqrt(6 / in);
      PyTorch's nn.Linear uses kaiming_uniform_(a=sqrt(5)), i.e. b_w = 1 / sqrt(in), sqrt(6)
      times narrower;
    bias [out] ~ U(-1/sqrt(in), 1/sqrt(in)) (tch's default `bs_init`, the same as PyTorch's).
  Tensors are drawn in tch's order (each layer's bias before its weight; encoder trunk, mean
  head, log-variance head, then the decoder) from the global generator seeded with `--seed`.
- Randomness: `--seed` seeds torch's global generator (initialisation, reparameterisation
  noise), like genae's `seed`; the batch order and the dynamic binarisation draw from a separate
  generator seeded with `--data-seed` (default 0), like genae's `data.seed`. The draws are not the
  same numbers as genae's (genae uses ChaCha8 for data), only the same distributions.
- Evaluation: the test ELBO (one sample per image, batches of 1000) after every epoch, and after
  training the IWAE bound L_k = log (1/k) sum_i p(x, z_i) / q(z_i | x), z_i ~ q(z | x), on the
  first `--eval-images` test images, under no_grad, at most 500 (image, sample) pairs per
  decoder pass, log-sum-exp in float64.

Runs on the CPU with torch.set_num_threads(os.cpu_count()) (what libtorch uses by default) and
writes a JSON report (`--out`, else stdout):

  {"implementation": "pytorch", ..., "test": {"elbo", "reconstruction", "kl",
   "log_likelihood": {"k", "n_images", "value", "seconds"}},
   "train": {"epochs", "steps", "seconds", "examples_per_s"}, "eval": {"seconds"},
   "peak_rss_mb"}

train.seconds / examples_per_s cover training steps only (evaluation excluded); eval.seconds is
the L_k evaluation. Run it with the project's venv:

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
# Seed of the one static binarisation of the test set (fixed: the same test set for every --seed).
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


class TchLinear(nn.Module):
    """A linear layer initialised exactly as tch 0.24's `nn::linear(.., Default::default())`."""

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

    def __init__(self, input_dim=784, hidden=(300, 300), latent_dim=40):
        super().__init__()
        widths = [input_dim, *hidden]
        self.trunk = nn.ModuleList(TchLinear(a, b) for a, b in zip(widths, widths[1:]))
        self.mean = TchLinear(widths[-1], latent_dim)
        self.log_var = TchLinear(widths[-1], latent_dim)
        widths = [latent_dim, *reversed(hidden), input_dim]
        self.decoder = nn.ModuleList(TchLinear(a, b) for a, b in zip(widths, widths[1:]))

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
    sums = torch.zeros(3, dtype=torch.float64)
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
            eps = torch.randn(c, m, mean.shape[1])
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
    p.add_argument("--out", help="write the JSON report here (default: stdout)")
    args = p.parse_args()
    if args.epochs < 1 or args.k < 1 or args.eval_images < 0 or args.batch_size < 1:
        p.error("--epochs, --k and --batch-size must be at least 1, --eval-images at least 0")
    if args.threads < 0:
        p.error("--threads must be at least 0")

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
    test_gen = torch.Generator().manual_seed(TEST_BINARIZATION_SEED)
    test_x = torch.bernoulli(test_u8.float() / 255.0, generator=test_gen)
    data_gen = torch.Generator().manual_seed(args.data_seed)
    n_train, input_dim = train_u8.shape

    model = Vae(input_dim=input_dim)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=args.learning_rate, betas=(0.9, 0.999), eps=1e-8
    )
    print(
        f"pytorch {torch.__version__}: vae on fashion-mnist ({n_train} train / {test_x.shape[0]} "
        f"test, binarize dynamic) on cpu, {threads} threads, {args.epochs} epochs, seed {args.seed}",
        file=sys.stderr,
    )

    steps = 0
    train_seconds = 0.0
    examples = 0
    test_metrics = {}
    for epoch in range(1, args.epochs + 1):
        started = time.perf_counter()
        sums = torch.zeros(3, dtype=torch.float64)
        order = torch.randperm(n_train, generator=data_gen)
        for start in range(0, n_train, args.batch_size):
            idx = order[start : start + args.batch_size]
            x = torch.bernoulli(train_u8[idx].float().div_(255.0), generator=data_gen)
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
        seconds = time.perf_counter() - started
        train_seconds += seconds
        examples += n_train
        train_elbo = sums[0].item() / n_train
        if not math.isfinite(train_elbo):
            raise SystemExit(f"the training ELBO became {train_elbo} at epoch {epoch}")
        eval_started = time.perf_counter()
        test_metrics = evaluate_elbo(model, test_x, args.eval_batch_size)
        print(
            f"epoch {epoch:>3}/{args.epochs}: train ELBO {train_elbo:9.3f}  test ELBO "
            f"{test_metrics['elbo']:9.3f} (rec {test_metrics['reconstruction']:9.3f}, KL "
            f"{test_metrics['kl']:7.3f})  {seconds:6.1f} s  {n_train / seconds:7.0f} ex/s  "
            f"(eval {time.perf_counter() - eval_started:.1f} s)",
            file=sys.stderr,
        )

    n_images = min(args.eval_images, test_x.shape[0])
    eval_started = time.perf_counter()
    lk = iwae_log_likelihood(model, test_x[:n_images], args.k) if n_images else float("nan")
    eval_seconds = time.perf_counter() - eval_started
    print(
        f"L_{args.k} on {n_images} test images: {lk:.3f} nats ({eval_seconds:.1f} s)",
        file=sys.stderr,
    )

    report = {
        "implementation": "pytorch",
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "device": "cpu",
        "threads": torch.get_num_threads(),
        "model": "vae",
        "dataset": "fashion-mnist",
        "seed": args.seed,
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
