#!/usr/bin/env bash
# Finds a MobileNetV2 (width 0.35) ticket on CIFAR-10 at 32x32 on a short schedule, saves its
# last level into saved_tickets/ and exports it (float32 TFLite, parity checked). The preset
# flags/mobilenetv2_cifar10.flags (global magnitude pruning of the 1x1 convolutions only, SGD
# momentum, batch 128) with its schedule shortened to fit two shared CPU cores: ITERATIONS per
# training (default 4000), warm-up 200, learning rate decayed 10x at 75% and 87.5%, rewinding
# to iteration 200, 2 levels at 50% of the 1x1 weights per level (50%, 25% kept), no re-init
# control. LTH (default .venv/bin/lth) and ROOT (default runs/mobilenetv2_short) may be set.
set -euo pipefail
cd "$(dirname "$0")/.."
LTH=${LTH:-.venv/bin/lth}
ROOT=${ROOT:-runs/mobilenetv2_short}
ITERATIONS=${ITERATIONS:-4000}
LEVELS=2
nice -n 10 $LTH find --flagfile=flags/mobilenetv2_cifar10.flags --root_dir="$ROOT" \
  --iterations="$ITERATIONS" --eval_every=$((ITERATIONS / 8)) --warmup_iterations=200 \
  --lr_decay_steps=$((ITERATIONS * 3 / 4)),$((ITERATIONS * 7 / 8)) --rewind_iteration=200 \
  --levels=$LEVELS --global_rate=0.5 --reinit=false --progress=false
EXPERIMENT=$(dirname "$(ls -d "$ROOT"/*/summary.json | head -n 1)")
name=mobilenetv2_035_cifar10_level$LEVELS
rm -rf "saved_tickets/$name"
$LTH tickets save --experiment_dir="$EXPERIMENT" --level=$LEVELS --out="saved_tickets/$name"
rm -rf "runs/export/$name"
nice -n 10 $LTH export --ticket="$name" --formats=tflite --out="runs/export/$name" --latency_runs=200
