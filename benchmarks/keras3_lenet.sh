#!/usr/bin/env bash
# Keras 3 against tf_keras on the science: LeNet-300-100 on Fashion-MNIST, the README demo's
# schedule (3,000 iterations per training, 6 rounds of IMP at 40% / 20% to 4.75% of the
# weights, reset to the initial weights, the re-init control), 3 seeds, once with the registered
# model built in tf_keras (the default) and once in Keras 3 (--framework=keras3), the default
# engine for both. Writes one report over the six replicates and a level-by-level table of the
# two (benchmarks/keras3_lenet/levels.md).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${ROOT:-runs/benchmarks_keras3_lenet}
OUT=benchmarks/keras3_lenet
COMMON=(--flagfile=flags/demo.flags --seeds=0,1,2 --root_dir="$ROOT" --progress=false)
.venv/bin/lth find "${COMMON[@]}"
.venv/bin/lth find "${COMMON[@]}" --framework=keras3
dirs=()
for d in "$ROOT"/*/; do dirs+=(--experiment_dir="${d%/}"); done
.venv/bin/lth report "${dirs[@]}" --out="$OUT"
.venv/bin/python - "$ROOT" "$OUT" <<'EOF'
"""Level by level: each branch's mean test accuracy over the seeds, per Keras, and the largest
difference between the two on one seed."""
import json, os, sys
root, out = sys.argv[1], sys.argv[2]
runs = {}
for name in sorted(os.listdir(root)):
  directory = os.path.join(root, name)
  if not os.path.exists(os.path.join(directory, "model.json")):
    continue
  framework = json.load(open(os.path.join(directory, "model.json")))["framework"]
  runs[framework] = {(r["level"], r["branch"], r["replicate"]): r
                     for r in json.load(open(os.path.join(directory, "summary.json")))}
a, b = runs["tf_keras"], runs["keras3"]
lines = ["| level | branch | weights | tf_keras test acc (mean of 3) | keras3 test acc (mean of 3) "
         "| largest per-seed difference (points) |", "|---|---|---|---|---|---|"]
for level, branch in sorted({(l, br) for l, br, _ in a}):
  seeds = sorted(s for l, br, s in a if (l, br) == (level, branch))
  acc = lambda run: [run[level, branch, s]["final_test_accuracy"] for s in seeds]
  diff = max(abs(x - y) for x, y in zip(acc(a), acc(b)))
  lines.append(f"| {level} | {branch} | {100 * a[level, branch, seeds[0]]['weights_remaining']:.2f}% "
               f"| {100 * sum(acc(a)) / len(seeds):.2f}% | {100 * sum(acc(b)) / len(seeds):.2f}% "
               f"| {100 * diff:.2f} |")
text = "\n".join(lines) + "\n"
open(os.path.join(out, "levels.md"), "w").write(text)
print(text)
EOF
