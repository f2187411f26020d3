#!/usr/bin/env bash
# Data-parallel check on one machine (docs/results.md, docs/benchmarks.md): the Fashion-MNIST
# VAE for 2 epochs, alternating, per seed:
#   single  one process, 2 threads, batch 100
#   ddp50   torchrun 2 ranks x 1 thread, batch 50 per rank (the same global batch and steps)
#   ddp100  torchrun 2 ranks x 1 thread, batch 100 per rank (global batch 200, half the steps)
# then a table of test ELBO and training examples/s (global) from each run's summary.json.
# Usage: scripts/data-parallel-check.sh [SEEDS...]   (default 0 1 2; needs a release genae)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=${OUT:-runs/data-parallel}
mkdir -p "$OUT"
# A private copy, so that a rebuild during the runs changes nothing.
cp target/release/genae "$OUT/genae"
G=$OUT/genae
TORCHRUN=${TORCHRUN:-.genae/venv/bin/torchrun}
SEEDS=("${@:-0 1 2}")
COMMON=(--set train.epochs=2 --set eval.log_likelihood_k=0)
for seed in ${SEEDS[*]}; do
    "$G" train fashion-mnist-vae "${COMMON[@]}" --set seed="$seed" --set threads=2 \
        --set output_dir="$OUT/single" > "$OUT/single-$seed.log" 2>&1
    for b in 50 100; do
        OMP_NUM_THREADS=1 "$TORCHRUN" --nproc_per_node=2 --no-python "$G" train fashion-mnist-vae \
            "${COMMON[@]}" --set seed="$seed" --set threads=1 --set train.batch_size="$b" \
            --set output_dir="$OUT/ddp$b" > "$OUT/ddp$b-$seed.log" 2>&1
    done
done
python3 - "$OUT" <<'PY'
import glob, json, statistics, sys
out = sys.argv[1]
print("| setting | runs | test ELBO (mean ± sd) | train examples/s (mean ± sd) |")
print("|---|---|---|---|")
for name in ["single", "ddp50", "ddp100"]:
    s = [json.load(open(f)) for f in sorted(glob.glob(f"{out}/{name}/*/summary.json"))]
    if not s:
        continue
    elbo = [x["test"]["elbo"] for x in s]
    eps = [x["train"]["examples_per_s"] for x in s]
    sd = lambda v: statistics.stdev(v) if len(v) > 1 else float("nan")
    print(f"| {name} | {len(s)} | {statistics.mean(elbo):.2f} ± {sd(elbo):.2f} | "
          f"{statistics.mean(eps):.0f} ± {sd(eps):.0f} |")
# Paired by seed: with train.parallel_noise = "global_batch" (the default) ddp50 draws the
# single run's noise, so the two differ by float rounding only.
def by_seed(name):
    runs = {}
    for f in sorted(glob.glob(f"{out}/{name}/*/summary.json")):
        config = open(f.replace("summary.json", "config.toml")).read()
        seed = next(l.split("=")[1].strip() for l in config.splitlines() if l.startswith("seed"))
        runs[seed] = json.load(open(f))["test"]["elbo"]
    return runs
print()
print("| seed | single | ddp50 | ddp50 − single |")
print("|---|---|---|---|")
single, ddp = by_seed("single"), by_seed("ddp50")
for seed in sorted(set(single) & set(ddp), key=str):
    print(f"| {seed} | {single[seed]:.3f} | {ddp[seed]:.3f} | {ddp[seed] - single[seed]:+.3f} |")
PY
