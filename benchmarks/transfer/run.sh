#!/usr/bin/env bash
# Transfer studies for `lth transfer` (issue 6) on short schedules that fit two shared CPU cores,
# one seed: LeNet-300-100 trainings of 5,000 iterations (Fashion-MNIST targets and the
# Fashion-MNIST -> CIFAR-10 adapter study) or 2,000 iterations (CIFAR-10 class split), batch 60,
# evaluation every 100 iterations so that early stopping still sees the small budgets before
# they overfit.
# Resumable: re-run to continue; finished branches are skipped. Writes runs under runs/transfer
# and the reports under benchmarks/transfer/<study>/. Usage: bash benchmarks/transfer/run.sh [STUDY...]
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" TF_CPP_MIN_LOG_LEVEL=3
LTH=(.venv/bin/python -m lth_tf.cli)
ROOT=runs/transfer
COMMON=(--data_dir=data --root_dir=$ROOT --progress=false --eval_every=100)
SHORT=(--iterations=5000)
BUDGETS=(50 200 1000 0)   # examples per class; 0 = the full training split
SGD=(--target_optimizer=sgd --learning_rate=0.01)
ADAM=(--target_optimizer=adam --learning_rate=0.0012)

hash_of() {  # the experiment directory a command just printed
  sed -n 's/^experiment directory: //p' "$1" | tail -1
}

source benchmarks/records.sh

transfer_all() {  # transfer_all STUDY ARGS...: every budget, then one report over them
  local study=$1; shift
  local dirs=() flags=() log
  mkdir -p "benchmarks/transfer/$study"
  for budget in "${BUDGETS[@]}"; do
    log=$(mktemp)
    "${LTH[@]}" transfer "${COMMON[@]}" --train_examples_per_class="$budget" "$@" | tee "$log"
    dirs+=("$(hash_of "$log")")
    rm -f "$log"
  done
  keep_records "$ROOT" "benchmarks/transfer/$study/experiments" "${dirs[@]}"
  for dir in "${dirs[@]}"; do flags+=("--experiment_dir=benchmarks/transfer/$study/experiments/${dir#"$ROOT"/}"); done
  "${LTH[@]}" report "${flags[@]}" --out="benchmarks/transfer/$study" > /dev/null
}

search() {  # search NAME LEVEL ARGS...: a short IMP search, its ticket saved as $ROOT/tickets/NAME
  local name=$1 level=$2; shift 2
  local log
  if [ -f "$ROOT/tickets/$name/ticket.json" ]; then return; fi
  log=$(mktemp)
  "${LTH[@]}" find "${COMMON[@]}" --levels="$level" --reinit=false "$@" | tee "$log"
  "${LTH[@]}" tickets save --experiment_dir="$(hash_of "$log")" --level="$level" \
    --out="$ROOT/tickets/$name" --data_dir=data
  rm -f "$log"
}

fmnist_to_cifar() {  # Fashion-MNIST ticket (shipped, 21%) -> CIFAR-10 through the grey/resize adapter
  transfer_all fmnist_to_cifar10 "${SHORT[@]}" --ticket=lenet300_fashion_mnist_level7 \
    --target_dataset=cifar10
}

optimizer() {  # Adam <-> SGD momentum on Fashion-MNIST, LeNet-300-100, 21% tickets
  search lenet300_fmnist_sgd_level7 7 "${SHORT[@]}" --flagfile=flags/lenet300_fashion_mnist.flags \
    --optimizer=sgd --learning_rate=0.01
  transfer_all adam_to_sgd "${SHORT[@]}" --ticket=lenet300_fashion_mnist_level7 --target_dataset=fashion_mnist \
    "${SGD[@]}" --target_ticket=$ROOT/tickets/lenet300_fmnist_sgd_level7
  transfer_all sgd_to_adam "${SHORT[@]}" --ticket=$ROOT/tickets/lenet300_fmnist_sgd_level7 \
    --target_dataset=fashion_mnist "${ADAM[@]}" --target_ticket=lenet300_fashion_mnist_level7
}

animals_to_vehicles() {  # CIFAR-10 animals (6 classes) -> vehicles (4 classes), LeNet-300-100, 41%
  # (Conv-4, the issue's network for this pair, needs hours per training here: not run.)
  local model=(--iterations=2000 --model=lenet300_100 --optimizer=adam --learning_rate=0.0012
               --batch_size=60 --fc_rate=0.2 --output_rate=0.1 --dataset=cifar10)
  search lenet300_cifar_animals_level4 4 "${model[@]}" --classes=2,3,4,5,6,7
  search lenet300_cifar_vehicles_level4 4 "${model[@]}" --classes=0,1,8,9
  transfer_all cifar_animals_to_vehicles --iterations=2000 \
    --ticket=$ROOT/tickets/lenet300_cifar_animals_level4 \
    --target_dataset=cifar10 --target_classes=0,1,8,9 \
    --target_ticket=$ROOT/tickets/lenet300_cifar_vehicles_level4
}

# Conv-4 on CIFAR-10 on the schedule of the short Conv record (benchmarks/conv_cifar10_short.sh):
# 1,200 iterations per training, twice the paper's per-round rates (conv 20%, fc 40%, output 20%),
# 3 rounds (about 25% weights). Evaluation every 200; every training in bfloat16 compute (1.8x
# faster here; float32 weights and masks). Budgets: 200 examples per class and full data.
CONV4=(--iterations=1200 --eval_every=200 --mixed_precision=mixed_bfloat16)
CONV4_RATES=(--flagfile=flags/conv4_cifar10.flags --conv_rate=0.2 --fc_rate=0.4 --output_rate=0.2)

conv4_optimizer() {  # Adam <-> SGD momentum, Conv-4 on CIFAR-10, 25% tickets
  # The Adam ticket is level 3 of the short Conv record's float32 Conv-4 experiment (needs
  # benchmarks/conv_cifar10_short.sh); the SGD ticket is found here with the same schedule.
  local BUDGETS=(200 0) adam=conv4_cifar10_adam_level3 sgd=conv4_cifar10_sgd_level3
  if [ ! -f "$ROOT/tickets/$adam/ticket.json" ]; then
    "${LTH[@]}" tickets save --experiment_dir="$(cat runs/benchmarks_conv/conv4.dir)" --level=3 \
      --out="$ROOT/tickets/$adam" --data_dir=data
  fi
  search $sgd 3 "${CONV4_RATES[@]}" "${CONV4[@]}" --optimizer=sgd --learning_rate=0.01
  transfer_all conv4_adam_to_sgd "${CONV4[@]}" --ticket="$ROOT/tickets/$adam" --target_dataset=cifar10 \
    "${SGD[@]}" --target_ticket="$ROOT/tickets/$sgd"
  transfer_all conv4_sgd_to_adam "${CONV4[@]}" --ticket="$ROOT/tickets/$sgd" --target_dataset=cifar10 \
    --target_optimizer=adam --learning_rate=0.0003 --target_ticket="$ROOT/tickets/$adam"
}

conv4_animals_to_vehicles() {  # CIFAR-10 animals (6 classes) -> vehicles (4 classes), Conv-4, 25%
  local BUDGETS=(0 200)  # full data first
  search conv4_cifar_animals_level3 3 "${CONV4_RATES[@]}" "${CONV4[@]}" --classes=2,3,4,5,6,7
  search conv4_cifar_vehicles_level3 3 "${CONV4_RATES[@]}" "${CONV4[@]}" --classes=0,1,8,9
  transfer_all conv4_animals_to_vehicles "${CONV4[@]}" \
    --ticket=$ROOT/tickets/conv4_cifar_animals_level3 \
    --target_dataset=cifar10 --target_classes=0,1,8,9 --target_optimizer=adam --learning_rate=0.0003 \
    --target_ticket=$ROOT/tickets/conv4_cifar_vehicles_level3
}

cifar_to_fmnist() {  # the reverse adapter direction: a CIFAR-10 LeNet ticket -> Fashion-MNIST
  search lenet300_cifar10_level4 4 --iterations=2000 --model=lenet300_100 --dataset=cifar10 \
    --fc_rate=0.2 --output_rate=0.1 --optimizer=adam --learning_rate=0.0012
  transfer_all cifar10_to_fmnist "${SHORT[@]}" --ticket=$ROOT/tickets/lenet300_cifar10_level4 \
    --target_dataset=fashion_mnist
}

noise_fmnist_to_cifar() {  # seed-to-seed noise: 200 examples per class, seeds 0, 1, 2
  local BUDGETS=(200)
  transfer_all noise_fmnist_to_cifar10 "${SHORT[@]}" --seeds=0,1,2 \
    --ticket=lenet300_fashion_mnist_level7 --target_dataset=cifar10
}

noise_animals_to_vehicles() {  # seed-to-seed noise: 200 examples per class, seeds 0, 1, 2
  local BUDGETS=(200)
  transfer_all noise_cifar_animals_to_vehicles --iterations=2000 --seeds=0,1,2 \
    --ticket=$ROOT/tickets/lenet300_cifar_animals_level4 \
    --target_dataset=cifar10 --target_classes=0,1,8,9 \
    --target_ticket=$ROOT/tickets/lenet300_cifar_vehicles_level4
}

all_report() {  # one report over every study (not the noise runs): how reuse spreads search costs
  local flags=() dir
  for dir in benchmarks/transfer/{fmnist_to_cifar10,adam_to_sgd,sgd_to_adam,cifar_animals_to_vehicles,cifar10_to_fmnist,conv4_adam_to_sgd,conv4_sgd_to_adam,conv4_animals_to_vehicles}/experiments/*/; do
    [ -f "$dir/summary.json" ] && flags+=("--experiment_dir=${dir%/}")
  done
  "${LTH[@]}" report "${flags[@]}" --out=benchmarks/transfer/all > /dev/null
}

for study in "${@:-fmnist_to_cifar optimizer animals_to_vehicles cifar_to_fmnist noise_fmnist_to_cifar noise_animals_to_vehicles all_report conv4_optimizer conv4_animals_to_vehicles}"; do
  for s in $study; do "$s"; done
done
