#!/usr/bin/env bash
# Saves the LeNet-300-100 / Fashion-MNIST tickets at about 21%, 7% and 3.6% weights remaining
# (levels 7, 12, 15 of benchmarks/lenet300_fashion_mnist_imp.sh) into saved_tickets/, and exports
# each as float and int8 TFLite with the size and latency table.
set -euo pipefail
cd "$(dirname "$0")/.."
EXPERIMENT=$(dirname "$(ls -d runs/benchmarks/*/summary.json | head -n 1)")
for level in 7 12 15; do
  name=lenet300_fashion_mnist_level${level}
  rm -rf "saved_tickets/$name"
  .venv/bin/lth tickets save --experiment_dir="$EXPERIMENT" --level=$level --out="saved_tickets/$name"
  for q in none int8; do
    rm -rf "runs/export/$name/$q"
    .venv/bin/lth export --ticket="$name" --quantize=$q --formats=$([ $q = none ] && echo saved_model,tflite || echo tflite) \
      --out="runs/export/$name/$q" --latency_runs=500
  done
done
