#!/usr/bin/env bash
# Full LeNet-300-100 lottery-ticket search on Fashion-MNIST with the paper's schedule
# (50K iterations, Adam 1.2e-3, batch 60, 20%/10% per round) down to 3.6% weights remaining,
# with the random re-initialisation control. Resumable: re-run to continue.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
time .venv/bin/lth find --flagfile=flags/lenet300_fashion_mnist.flags --levels=15 \
  --root_dir=runs/benchmarks --progress=false "$@"
