#!/usr/bin/env bash
# Pruning at initialisation against lottery tickets: LeNet-300-100 on Fashion-MNIST
# (flags/lenet300_fashion_mnist.flags), 3 replicates (seeds 0,1,2), on a shortened schedule
# (5,000 iterations per training instead of 50,000; evaluation every 250).
#   - IMP: iterative magnitude pruning at the flagfile's layerwise rates (20% of fc1 and fc2,
#     10% of the output layer per round), survivors reset to θ0, 17 levels; weights remaining
#     51.28% at level 3, 21.07% at level 7, 6.95% at level 12, 2.31% at level 17.
#   - SynFlow, SNIP, GraSP: θ0 scored and pruned once (--levels=1, --mode=one_shot; one level is
#     the same in both modes), ranked over all layers together (--init_scope=global, the
#     default) at --global_rate values whose weights remaining equal IMP's levels 3, 7, 12 and 17
#     exactly (136511, 56094, 18506 and 6138 of the 266200 prunable weights).
#   Every experiment also trains the random re-initialisation control (--reinit) and the
#   random-pruning control (--random_prune: a random mask with the ticket's per-layer counts;
#   the 'shuffle' ablation of Frankle et al. 2021). Every experiment trains its own dense level 0.
# Then one report over all the experiments into $OUT (default benchmarks/pai_lenet300/).
# The report's labels name model, data, optimizer, mode and k but not the pruning strategy, so
# $OUT/timings.tsv (one row per `lth find`: method, rate, experiment directory, wall seconds of
# the call, seconds its branches trained and their count) names each experiment's method, and
# $OUT/by_method.md and by_method.png give the mean ± std early-stop test accuracy per method,
# weights remaining and branch, and each method's seconds.
# Runtime: 300 trainings (IMP 3 x 52, the others 12 experiments x 3 x 4) at 6-7.5 s each and
# about 20 s of start-up per `lth find`: about 40 minutes on 2 idle cores.
#
# Overrides (environment): ROOT (experiment root), OUT (report folder), SEEDS, ITERATIONS,
# EVAL_EVERY, LEVELS (IMP levels), RATES (space-separated global rates), METHODS (space-separated
# strategies); arguments are passed to every `lth find` (runtime flags: an experiment keeps the
# engine it started with). Resumable: re-run to continue (a resumed call's wall seconds cover
# only that call).
# A check at tiny scale (about 7.5 minutes on 2 cores, nothing written under benchmarks/):
#   ITERATIONS=60 EVAL_EVERY=30 LEVELS=3 ROOT=runs/pai_tiny OUT=runs/pai_tiny/report \
#     bash benchmarks/pai_lenet300.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${ROOT:-runs/benchmarks_pai}
OUT=${OUT:-benchmarks/pai_lenet300}
SEEDS=${SEEDS:-0,1,2}
ITERATIONS=${ITERATIONS:-5000}
EVAL_EVERY=${EVAL_EVERY:-250}
LEVELS=${LEVELS:-17}
# 1 - (IMP's weights remaining at levels 3, 7, 12, 17) / 266200, to 6 digits: one round at these
# rates keeps exactly IMP's counts (lth_tf/pruning/strategies/base.py, remaining_after).
RATES=${RATES:-0.487186 0.789279 0.930481 0.976942}
METHODS=${METHODS:-synflow snip grasp}
COMMON=(--flagfile=flags/lenet300_fashion_mnist.flags --iterations="$ITERATIONS"
        --eval_every="$EVAL_EVERY" --seeds="$SEEDS" --root_dir="$ROOT" --progress=false
        --reinit=true --random_prune=true)
mkdir -p "$OUT" "$ROOT/logs"
TIMINGS="$OUT/timings.tsv"
if [ ! -s "$TIMINGS" ]; then
  printf 'started\tmethod\tglobal_rate\tlevels\tseeds\titerations\texperiment_dir\twall_s\tbranch_wall_s\ttrainings\n' \
    > "$TIMINGS"
fi
dirs=()
EXTRA=("$@")

# run_find METHOD RATE LEVELS ARGS...: one `lth find`; its wall seconds and experiment go to
# $TIMINGS. branch_wall_s: the seconds the experiment's finished branches trained (compute.json's
# total, evaluation included); the rest of wall_s is start-up, data loading, scoring and
# pruning, and writing.
run_find() {
  local method=$1 rate=$2 levels=$3
  shift 3
  local log="$ROOT/logs/$method-$rate.log" started start end dir branch
  if [ "$rate" = - ]; then log="$ROOT/logs/$method.log"; fi
  started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  start=$(date +%s)
  .venv/bin/lth find "${COMMON[@]}" --levels="$levels" "$@" ${EXTRA[@]+"${EXTRA[@]}"} \
      > "$log" 2>&1 || {
    tail -n 30 "$log" >&2
    echo "lth find failed: $method $rate (log: $log)" >&2
    return 1
  }
  end=$(date +%s)
  dir=$(sed -n 's/^experiment directory: //p' "$log" | tail -n 1)
  if [ -z "$dir" ]; then
    echo "no experiment directory in $log" >&2
    return 1
  fi
  dirs+=(--experiment_dir="$dir")
  branch=$(.venv/bin/python -c 'import json, sys; t = json.load(open(sys.argv[1]))["total"]
print("%.1f\t%d" % (t["wall_time_s"], t["runs"]))' "$dir/compute.json")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$started" "$method" "$rate" "$levels" \
    "$SEEDS" "$ITERATIONS" "$dir" "$((end - start))" "$branch" >> "$TIMINGS"
  echo "$method $rate: $((end - start)) s wall ($dir)"
}

run_find imp - "$LEVELS" --pruning_strategy=magnitude
for method in $METHODS; do
  for rate in $RATES; do
    run_find "$method" "$rate" 1 --pruning_strategy="$method" --mode=one_shot \
      --global_rate="$rate"
  done
done

.venv/bin/lth report "${dirs[@]}" --curve_levels=1,"$LEVELS" --out="$OUT" > "$ROOT/logs/report.log"
tail -n 12 "$ROOT/logs/report.log"

# by_method.md and by_method.png: mean ± std over the replicates of each method, weights
# remaining and branch (the report's table.csv joined with $TIMINGS, whose last row for an
# experiment names its method), and each method's seconds (wall of its `lth find` calls, and
# of their branches' training).
.venv/bin/python - "$OUT" "$TIMINGS" "${dirs[@]#--experiment_dir=}" <<'EOF'
import collections, csv, os, statistics, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import matplotlib.ticker
out, timings, experiments = sys.argv[1], sys.argv[2], [os.path.basename(d) for d in sys.argv[3:]]
calls = {}
with open(timings) as handle:
  for row in csv.DictReader(handle, delimiter="\t"):
    calls[os.path.basename(row["experiment_dir"])] = row
cells = collections.defaultdict(list)
with open(os.path.join(out, "table.csv")) as handle:
  for row in csv.DictReader(handle):
    method = calls[row["experiment"]]["method"]
    if int(row["level"]) == 0 and method != "imp":
      continue  # every experiment trains its own dense level 0; IMP's stands for them
    key = (method, round(100 * float(row["weights_remaining"]), 2), row["branch"])
    cells[key].append(100 * float(row["early_stop_test_accuracy"]))
stats = {key: (statistics.mean(v), statistics.stdev(v) if len(v) > 1 else 0.0, len(v))
         for key, v in cells.items()}
methods = list(dict.fromkeys(calls[e]["method"] for e in experiments))
lines = ["# Pruning at initialisation against IMP: accuracy and cost by method", "",
         "| method | weights remaining (%) | branch | replicates | early-stop test accuracy (%) |",
         "|---|---|---|---|---|"]
for (name, remaining, branch), (mean, spread, n) in sorted(
    stats.items(), key=lambda kv: (methods.index(kv[0][0]), -kv[0][1], kv[0][2])):
  lines.append(f"| {name} | {remaining:.2f} | {branch} | {n} | {mean:.2f} ± {spread:.2f} |")
lines += ["", "| method | lth find calls | wall s | branch training s | trainings |",
          "|---|---|---|---|---|"]
for name in methods:
  rows = [calls[e] for e in experiments if calls[e]["method"] == name]
  lines.append(f"| {name} | {len(rows)} | {sum(int(r['wall_s']) for r in rows)} | "
               f"{sum(float(r['branch_wall_s']) for r in rows):.1f} | "
               f"{sum(int(r['trainings']) for r in rows)} |")
lines += ["", "Wall s: the `lth find` calls of the last run (a resumed call counts only itself); "
          "branch training s: compute.json's totals (each experiment trains its own dense "
          "level 0; the rest of the wall time is start-up, data loading, scoring and pruning, "
          "writing).", "", "![by_method.png](by_method.png)"]
with open(os.path.join(out, "by_method.md"), "w") as handle:
  handle.write("\n".join(lines) + "\n")
figure, axes = plt.subplots(figsize=(8, 5))
styles = {"ticket": ("-", "o"), "reinit": ("--", "s"), "random_prune": (":", "^")}
for index, name in enumerate(methods):
  for branch, (line, marker) in styles.items():
    points = sorted((r, m, sd) for (n, r, b), (m, sd, _) in stats.items()
                    if n == name and b == branch and r < 100)
    if points:
      axes.errorbar([p[0] for p in points], [p[1] for p in points], [p[2] for p in points],
                    linestyle=line, marker=marker, color=f"C{index}", capsize=2,
                    label=f"{name} {branch}")
dense = stats.get(("imp", 100.0, "ticket"))
if dense:
  axes.axhline(dense[0], color="grey", linewidth=0.8, label="dense")
axes.set_xscale("log")
# Ticks at the densities the pruning-at-initialisation methods share with IMP's levels.
ticks = sorted({r for (n, r, _) in stats if n != "imp"} or {r for (_, r, _) in stats if r < 100})
axes.set_xticks(ticks, [f"{r:g}" for r in ticks], rotation=45)
axes.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
axes.invert_xaxis()
axes.set_xlabel("weights remaining (%)")
axes.set_ylabel("test accuracy at early stop (%)")
axes.grid(True, alpha=0.3)
axes.legend(fontsize=7, ncol=2)
figure.tight_layout()
figure.savefig(os.path.join(out, "by_method.png"), dpi=120)
print(f"by method: {os.path.join(out, 'by_method.md')}, {os.path.join(out, 'by_method.png')}")
EOF
echo "timings: $TIMINGS"
