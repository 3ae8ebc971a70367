#!/usr/bin/env bash
# LeNet-300-100 on Fashion-MNIST on the paper's schedule: 50,000 iterations per level, Adam 1.2e-3,
# batch 60, evaluation every 500, layerwise magnitude pruning 20% (hidden) / 10% (output) per round,
# reset to θ0 (flags/lenet300_fashion_mnist.flags), 3 replicates (seeds 0, 1, 2), LEVELS levels:
#   - iterative, with the re-initialisation and random-pruning controls;
#   - one-shot pruning of the dense network to the same densities.
# Each (mode, seed) is one resumable `lth find` in its own directory, two at a time with one
# TensorFlow thread each (on two cores that trains two replicates in the time of one with two
# threads); the replicates are then gathered into one experiment directory per mode, where
# `lth find --seeds=0,1,2` finds every branch finished and writes the summary, and `lth report`
# aggregates them. (`--executor=ray` does the same within one experiment, retired
# `--replicate_processes=2` did; the lanes here also run the one-shot replicates beside the
# iterative ones.) Runtime option
# --fused_optimizer is not hashed. Branches train one by one: on one thread, stacking a level's
# three branches (--batch_variants, retired since) was slower than training them in turn
# (benchmarks/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${ROOT:-runs/benchmarks_lenet_paper}
OUT=${OUT:-benchmarks/lenet300_fashion_mnist_paper}
LEVELS=${LEVELS:-12}
export ROOT LEVELS
common_flags() {  # the experiment's flags (LEVELS levels), then those of mode $1
  echo --flagfile=flags/lenet300_fashion_mnist.flags --levels="$LEVELS" --progress=false \
    --fused_optimizer=true
  case $1 in
    iterative) echo --reinit=true --random_prune=true ;;
    one_shot) echo --mode=one_shot --reinit=false ;;
  esac
}
lane() {  # lane MODE SEED: one replicate of one mode, on one thread
  local mode=$1 seed=$2 start=$SECONDS
  if compgen -G "$ROOT/$mode/*/replicate_$seed" > /dev/null; then return; fi  # gathered already
  # shellcheck disable=SC2046
  nice -n 5 .venv/bin/lth find $(common_flags "$mode") --intra_op_threads=1 --inter_op_threads=1 \
    --seeds="$seed" --root_dir="$ROOT/lanes/${mode}_$seed" \
    >> "$ROOT/lanes/${mode}_$seed.log" 2>&1
  echo "$mode seed $seed: $((SECONDS - start)) s" >> "$ROOT/wall_times.txt"
}
export -f common_flags lane
mkdir -p "$ROOT/lanes"
start=$SECONDS
printf '%s\n' "iterative 0" "iterative 1" "iterative 2" "one_shot 0" "one_shot 1" "one_shot 2" |
  xargs -P 2 -L 1 bash -c 'lane "$@"' _
echo "all lanes: $((SECONDS - start)) s" >> "$ROOT/wall_times.txt"

source benchmarks/records.sh
dirs=()
for mode in iterative one_shot; do
  for seed in 0 1 2; do  # gather the replicates (a move within one file system)
    lane_dir=$(ls -d "$ROOT/lanes/${mode}_$seed"/*/)
    name=$(basename "$lane_dir")
    mkdir -p "$ROOT/$mode/$name"
    cp "$lane_dir"/config.json "$lane_dir"/flags.txt "$ROOT/$mode/$name/"
    [ -d "$lane_dir/replicate_$seed" ] && mv "$lane_dir/replicate_$seed" "$ROOT/$mode/$name/"
  done
  # shellcheck disable=SC2046
  .venv/bin/lth find $(common_flags "$mode") --seeds=0,1,2 --root_dir="$ROOT/$mode"
  dirs+=("$ROOT/$mode/$name")
done
keep_records "$ROOT" "$OUT/experiments" "${dirs[@]}"
.venv/bin/lth report --experiment_dir="${dirs[0]}" --experiment_dir="${dirs[1]}" \
  --curve_levels=0,3,7,"$LEVELS" --out="$OUT"
