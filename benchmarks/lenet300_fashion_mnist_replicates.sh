#!/usr/bin/env bash
# LeNet-300-100 on Fashion-MNIST, 3 replicates, on a shortened schedule (5,000 iterations per
# level instead of 50,000; evaluation every 250): iterative magnitude pruning for 15 levels
# (to 3.58%) with the re-initialisation and random-pruning controls, and one-shot pruning to
# the same densities. Then one report overlaying both. The record (2026-11-25) trained the
# branches of a level together (--batch_variants, retired on 2026-12-02: it was never faster);
# this script now trains them one by one with the fused optimizer kernels (--fused_optimizer),
# which agrees with the record within float rounding. Runtime options leave the experiment hash
# as it is, but the record's directories keep their engine: rerun into a new ROOT.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${ROOT:-runs/benchmarks_replicates}
COMMON=(--flagfile=flags/lenet300_fashion_mnist.flags --iterations=5000 --eval_every=250
        --levels=15 --seeds=0,1,2 --root_dir="$ROOT" --progress=false
        --fused_optimizer=true)
.venv/bin/lth find "${COMMON[@]}" --reinit=true --random_prune=true
.venv/bin/lth find "${COMMON[@]}" --mode=one_shot --reinit=false
dirs=()
for d in "$ROOT"/*/; do dirs+=(--experiment_dir="${d%/}"); done
.venv/bin/lth report "${dirs[@]}" --curve_levels=0,7,15 --out=benchmarks/lenet300_fashion_mnist_replicates
