#!/usr/bin/env bash
# Creates .venv with lth_tf and its pinned dependencies, and installs the offline datasets
# (Fashion-MNIST and CIFAR-10) into ./data. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.lth_installed
if [ ! -f "$stamp" ] || [ setup.py -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  # --no-compile: pip would byte-compile every module of every package (most never imported),
  # which took about two thirds of the install's CPU time; Python compiles what it imports, once.
  .venv/bin/python -m pip install -q --no-compile -e ".[test,ray,jax]"
  touch "$stamp"
fi
if [ "${LTH_SKIP_DATA:-0}" != "1" ]; then
  PATH="$PWD/.venv/bin:$PATH" bash scripts/install_offline_data.sh data
fi
