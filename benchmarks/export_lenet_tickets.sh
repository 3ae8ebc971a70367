#!/usr/bin/env bash
# Exports every shipped LeNet-300-100 ticket as float, float16 and int8 TFLite in both sparse
# encodings (compact, converter) and collects the size and latency tables in
# benchmarks/export_lenet_tickets/<ticket>_<quantize>_<encoding>.md. A parity failure is
# recorded in the table and on stderr; the script goes on. TICKETS="..." limits the tickets.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=benchmarks/export_lenet_tickets
mkdir -p "$OUT"
for name in ${TICKETS:-lenet300_fashion_mnist_level7 lenet300_fashion_mnist_level12 lenet300_fashion_mnist_level15}; do
  for q in none float16 int8; do
    for encoding in compact converter; do
      dir="runs/export/$name/${q}_$encoding"
      rm -rf "$dir"
      formats=tflite
      [ "$q" = none ] && [ "$encoding" = compact ] && formats=saved_model,tflite
      .venv/bin/lth export --ticket="$name" --quantize=$q --tflite_encoding=$encoding \
        --formats=$formats --out="$dir" --latency_runs=500 > /dev/null || true
      cp "$dir/size_latency.md" "$OUT/${name}_${q}_$encoding.md"
      cp "$dir/check.json" "$OUT/${name}_${q}_$encoding.json"
    done
  done
done
