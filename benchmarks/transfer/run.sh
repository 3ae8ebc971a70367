#!/usr/bin/env bash
# Transfer studies for `lth transfer` (issue 6) on a short schedule that fits two shared CPU
# cores: every target training is 5,000 iterations (batch 60, evaluation every 100 iterations, so that
# early stopping still sees the small budgets before they overfit), one seed.
# Resumable: re-run to continue; finished branches are skipped. Writes runs under runs/transfer
# and the reports under benchmarks/transfer/<study>/. Usage: bash benchmarks/transfer/run.sh [STUDY...]
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" TF_CPP_MIN_LOG_LEVEL=3
LTH=(.venv/bin/python -m lth_tf.cli)
ROOT=runs/transfer
COMMON=(--data_dir=data --root_dir=$ROOT --progress=false --iterations=5000 --eval_every=100)
BUDGETS=(50 200 1000 0)   # examples per class; 0 = the full training split
SGD=(--target_optimizer=sgd --learning_rate=0.01)
ADAM=(--target_optimizer=adam --learning_rate=0.0012)

hash_of() {  # the experiment directory a command just printed
  sed -n 's/^experiment directory: //p' "$1" | tail -1
}

transfer_all() {  # transfer_all STUDY ARGS...: every budget, then one report over them
  local study=$1; shift
  local dirs=() log
  mkdir -p "benchmarks/transfer/$study"
  for budget in "${BUDGETS[@]}"; do
    log=$(mktemp)
    "${LTH[@]}" transfer "${COMMON[@]}" --train_examples_per_class="$budget" "$@" | tee "$log"
    dirs+=("--experiment_dir=$(hash_of "$log")")
    rm -f "$log"
  done
  "${LTH[@]}" report "${dirs[@]}" --out="benchmarks/transfer/$study" > /dev/null
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
  transfer_all fmnist_to_cifar10 --ticket=lenet300_fashion_mnist_level7 --target_dataset=cifar10
}

optimizer() {  # Adam <-> SGD momentum on Fashion-MNIST, LeNet-300-100, 21% tickets
  search lenet300_fmnist_sgd_level7 7 --flagfile=flags/lenet300_fashion_mnist.flags \
    --optimizer=sgd --learning_rate=0.01
  transfer_all adam_to_sgd --ticket=lenet300_fashion_mnist_level7 --target_dataset=fashion_mnist \
    "${SGD[@]}" --target_ticket=$ROOT/tickets/lenet300_fmnist_sgd_level7
  transfer_all sgd_to_adam --ticket=$ROOT/tickets/lenet300_fmnist_sgd_level7 \
    --target_dataset=fashion_mnist "${ADAM[@]}" --target_ticket=lenet300_fashion_mnist_level7
}

animals_to_vehicles() {  # CIFAR-10 animals (6 classes) -> vehicles (4 classes), LeNet-300-100, 26%
  local model=(--model=lenet300_100 --optimizer=adam --learning_rate=0.0012 --batch_size=60
               --fc_rate=0.2 --output_rate=0.1 --dataset=cifar10)
  search lenet300_cifar_animals_level6 6 "${model[@]}" --classes=2,3,4,5,6,7
  search lenet300_cifar_vehicles_level6 6 "${model[@]}" --classes=0,1,8,9
  transfer_all cifar_animals_to_vehicles --ticket=$ROOT/tickets/lenet300_cifar_animals_level6 \
    --target_dataset=cifar10 --target_classes=0,1,8,9 \
    --target_ticket=$ROOT/tickets/lenet300_cifar_vehicles_level6
}

cifar_to_fmnist() {  # the reverse adapter direction: a CIFAR-10 LeNet ticket -> Fashion-MNIST
  search lenet300_cifar10_level6 6 --model=lenet300_100 --dataset=cifar10 --fc_rate=0.2 \
    --output_rate=0.1 --optimizer=adam --learning_rate=0.0012
  transfer_all cifar10_to_fmnist --ticket=$ROOT/tickets/lenet300_cifar10_level6 \
    --target_dataset=fashion_mnist
}

for study in "${@:-fmnist_to_cifar optimizer animals_to_vehicles cifar_to_fmnist}"; do
  for s in $study; do "$s"; done
done
