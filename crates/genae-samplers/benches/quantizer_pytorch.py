"""PyTorch reference for `benches/quantizer.rs`: the straight-through vector quantizer,
forward and backward, on the same shapes and with the same computation as genae's
`VectorQuantizer::forward_t(z_e, train = true)`.

One iteration: 128 encoder grids of 8x8 vectors (z_e [128, 64, 8, 8], channels first),
K = 512 codes of d = 64; nearest codes by ||a||^2 - 2ab + ||b||^2 with one matmul (addmm);
straight-through output z_e + sg(z_q - z_e); codebook loss ||sg(z_e) - z_q||^2 and commitment
loss 0.25 ||z_e - sg(z_q)||^2, each summed per example and averaged over the batch; usage counts
and perplexity; the unused-step counters; with `ema`, the EMA codebook update (decay 0.99,
Laplace smoothing 1e-5) instead of the codebook loss; backward of mean(quantized^2) + losses.

    .genae/venv/bin/python crates/genae-samplers/benches/quantizer_pytorch.py [--iters 200]
        [--device cpu|cuda] [--threads N] [--update loss|ema|both]

Prints milliseconds per iteration for each variant.
"""

import argparse
import time

import torch

BATCH, SIDE, CODES, DIM = 128, 8, 512, 64
BETA, DECAY, EPSILON = 0.25, 0.99, 1e-5


class Quantizer:
    def __init__(self, ema: bool, device: torch.device):
        bound = 1.0 / CODES
        init = (torch.rand(CODES, DIM, device=device) * 2 - 1) * bound
        self.ema = ema
        self.codebook = init.clone().requires_grad_(not ema)
        self.ema_count = torch.ones(CODES, device=device)
        self.ema_sum = init.clone()
        self.steps_unused = torch.zeros(CODES, dtype=torch.long, device=device)

    def forward(self, z_e: torch.Tensor):
        n = z_e.shape[0]
        rows = z_e.movedim(1, -1).reshape(-1, DIM)
        rows_d = rows.detach()
        cb = self.codebook
        with torch.no_grad():
            a2 = rows_d.square().sum(1, keepdim=True)
            b2 = cb.square().sum(1)
            dist = b2.addmm(rows_d, (cb * -2.0).t()).add_(a2)
            idx = dist.argmin(1)
        usage = torch.zeros(CODES, dtype=torch.long, device=z_e.device).index_add(
            0, idx, torch.ones_like(idx)
        )
        z_q_rows = cb.index_select(0, idx)
        z_q = z_q_rows.reshape(n, SIDE, SIDE, DIM).movedim(-1, 1)
        quantized = z_e + (z_q - z_e).detach()
        commitment = BETA * (rows - z_q_rows.detach()).square().sum() / n
        codebook_loss = None if self.ema else (rows_d - z_q_rows).square().sum() / n
        p = usage.float() / usage.sum()
        perplexity = torch.exp(-torch.xlogy(p, p).sum())
        with torch.no_grad():
            if self.ema:
                sums = torch.zeros(CODES, DIM, device=z_e.device).index_add(0, idx, rows_d)
                count = self.ema_count * DECAY + usage.float() * (1 - DECAY)
                total = self.ema_sum * DECAY + sums * (1 - DECAY)
                m = count.sum()
                smoothed = ((count + EPSILON) / (m + CODES * EPSILON) * m).unsqueeze(1)
                codes = torch.where(smoothed > 0, total / smoothed, self.codebook)
                self.ema_count.copy_(count)
                self.ema_sum.copy_(total)
                self.codebook.copy_(codes)
            unused = torch.where(
                usage > 0, torch.zeros_like(self.steps_unused), self.steps_unused + 1
            )
            self.steps_unused.copy_(unused)
        return quantized, codebook_loss, commitment, perplexity


def bench(update: str, device: torch.device, iters: int, warmup: int) -> float:
    torch.manual_seed(0)
    vq = Quantizer(update == "ema", device)
    z_e = (torch.randn(BATCH, DIM, SIDE, SIDE, device=device) * 0.1).requires_grad_(True)

    def step():
        z_e.grad = None
        if vq.codebook.requires_grad:
            vq.codebook.grad = None
        quantized, codebook_loss, commitment, _ = vq.forward(z_e)
        loss = quantized.square().mean() + commitment
        if codebook_loss is not None:
            loss = loss + codebook_loss
        loss.backward()
        # Reading a value back waits for the device (as the Rust bench does).
        return z_e.grad.sum().item()

    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(iters):
        step()
    return (time.perf_counter() - start) / iters * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--update", choices=["loss", "ema", "both"], default="both")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    updates = ["loss", "ema"] if args.update == "both" else [args.update]
    for update in updates:
        ms = bench(update, device, args.iters, args.warmup)
        print(
            f"quantizer/fwd_bwd_{update}_b{BATCH}_{SIDE}x{SIDE}_k{CODES}_d{DIM}_{device}: "
            f"{ms:.3f} ms/iter (torch {torch.__version__}, {torch.get_num_threads()} threads, "
            f"{args.iters} iters)"
        )


if __name__ == "__main__":
    main()
