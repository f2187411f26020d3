#!/usr/bin/env bash
# The disentanglement study of docs/results.md: β-VAE (β = 1, 4, 16), β-TC-VAE (β = 6),
# FactorVAE (γ = 35) and DIP-VAE-I on the 64x64 shapes grid, seeds 0-2, one run after another
# (all models of a seed before the next seed). Resumable: a run whose summary.json exists is
# skipped. Then prints the table (mean ± sd over seeds) with python3.
#
#   bash scripts/disentanglement-study.sh [OUT_DIR]      (default runs/study-disentanglement)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/study-disentanglement}
genae=${GENAE:-target/release/genae}
mkdir -p "$out"
runs=(
  "betavae-b1 dsprites-betavae train.beta=1.0"
  "betavae-b4 dsprites-betavae train.beta=4.0"
  "betavae-b16 dsprites-betavae train.beta=16.0"
  "betatcvae-b6 dsprites-betatcvae train.beta=6.0"
  "factorvae-g35 dsprites-factorvae factor_vae.gamma=35.0"
  "dipvae-i dsprites-dipvae dip.lambda_od=10.0"
)
for seed in 0 1 2; do
  for spec in "${runs[@]}"; do
    read -r label config setting <<<"$spec"
    name="$label-s$seed"
    if compgen -G "$out/$name-*/summary.json" >/dev/null; then
      continue
    fi
    rm -rf "$out/$name"-*
    echo "== $name ($(date -u +%H:%M:%S))"
    "$genae" train "$config" --set "name=\"$name\"" --set "seed=$seed" --set "$setting" \
      --set "output_dir=\"$out\"" > "$out/$name.log" 2>&1
    tail -4 "$out/$name.log"
  done
done
python3 - "$out" <<'PY'
import glob, json, statistics, sys, collections
out = sys.argv[1]
rows = collections.defaultdict(list)
for path in sorted(glob.glob(f"{out}/*-s[0-9]-*/summary.json")):
    s = json.load(open(path))
    label = path.split("/")[-2].rsplit("-s", 1)[0]
    d = s["disentanglement"]
    rows[label].append((d["beta_vae"], d["factor_vae"], d["mig"], d["sap"],
                        d["dci_disentanglement"], d["dci_completeness"],
                        d["gaussian_total_correlation"], s["test"]["elbo"]))
cols = ["β-VAE", "FactorVAE", "MIG", "SAP", "DCI D", "DCI C", "Gauss. TC", "test ELBO"]
print("| model | seeds | " + " | ".join(cols) + " |")
print("|---|---|" + "---|" * len(cols))
for label, vals in rows.items():
    cells = []
    for j in range(len(cols)):
        xs = [v[j] for v in vals]
        sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
        cells.append(f"{statistics.mean(xs):.3f} ± {sd:.3f}" if j < 7 else f"{statistics.mean(xs):.1f} ± {sd:.1f}")
    print(f"| {label} | {len(vals)} | " + " | ".join(cells) + " |")
PY
