"""MobileNet tickets on a phone's runtime: size, accuracy and LiteRT latency, dense against tickets.

Finds one-shot tickets with rewinding (`lth find --mode=one_shot`: the dense network trained
once, its 1x1 convolutions pruned globally by magnitude to each level's density, every ticket
retrained from iteration k), saves the dense network and every level as tickets, exports each
with `lth export` (float32, float16, int8; parity checked there) and times all the float32,
float16 and int8 models of all the levels together with `lth_tf.export.latency.interleaved`:
the LiteRT interpreter with its default delegate (XNNPACK), batch 1, 1 and 2 threads, warm-up
excluded, the median of `--runs` rounds in which every model runs once in turn, so a shared
CPU slows them alike and the ratio of medians against the dense model of the same precision
is the number to read. Writes `<out>/mobile_latency.md` and `.json`.

  python benchmarks/mobile_latency.py --data_dir=data --out=benchmarks/mobile_latency

The defaults are the recorded run (benchmarks/README.md); --iterations sets every training's
length (the schedule is stated in the table's header).
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lth_tf import api, io, tickets  # noqa: E402
from lth_tf.export import latency, ship  # noqa: E402

QUANTIZE = ("none", "float16", "int8")
LABEL = {"none": "float32", "float16": "float16", "int8": "int8"}


def _find(args):
  return api.find(
      args.model, args.dataset, log=print, root_dir=os.path.join(args.work, "runs"),
      data_dir=args.data_dir, levels=len(args.rates_levels), mode="one_shot", scope="global",
      global_layers="pointwise", global_rate=args.global_rate, output_rate=0.0,
      rewind_iteration=args.rewind_iteration, iterations=args.iterations,
      eval_every=args.eval_every, batch_size=args.batch_size, optimizer="sgd", momentum=0.9,
      learning_rate=args.learning_rate, warmup_iterations=min(200, args.iterations // 10),
      validation_size=args.validation_size, progress=False)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", default="mobilenetv1_025")
  parser.add_argument("--dataset", default="cifar10")
  parser.add_argument("--data_dir", default="data")
  parser.add_argument("--out", default="benchmarks/mobile_latency")
  parser.add_argument("--work", default="runs/mobile_latency")
  parser.add_argument("--iterations", type=int, default=2000)
  parser.add_argument("--eval_every", type=int, default=500)
  parser.add_argument("--batch_size", type=int, default=128)
  parser.add_argument("--learning_rate", type=float, default=0.05)
  parser.add_argument("--rewind_iteration", type=int, default=100)
  # One-shot levels 1, 2, 3 at 53% per level keep 47%, 22% and 10.4% of the 1x1 weights.
  parser.add_argument("--global_rate", type=float, default=0.53)
  parser.add_argument("--levels", type=int, default=3, dest="num_levels")
  parser.add_argument("--validation_size", type=int, default=5000)
  parser.add_argument("--runs", type=int, default=200)
  args = parse_with_precisions(parser, argv)
  args.rates_levels = list(range(1, args.num_levels + 1))
  result = _find(args)
  exports = export_levels(result.directory, [0] + args.rates_levels, args.precisions, args.work,
                          args.data_dir)
  paths = [path for path, _ in exports.values()]
  image = ship.raw_test_pixels(_splits(args))[0]
  medians = {t: latency.interleaved(paths, image, t, args.runs) for t in (1, 2)}
  table = _table(args, exports, medians)
  os.makedirs(args.out, exist_ok=True)
  io.write_text(os.path.join(args.out, "mobile_latency.md"), table)
  io.write_json(os.path.join(args.out, "mobile_latency.json"), {
      # No local paths in the record: the settings that define the run, and the experiment hash.
      "args": {k: v for k, v in vars(args).items() if k not in ("data_dir", "work", "out")},
      "experiment_hash": os.path.basename(os.path.normpath(result.directory)),
      "medians_ms": {str(t): {os.path.relpath(p, args.work): m for p, m in ms.items()}
                     for t, ms in medians.items()},
      "checks": {f"level_{level}_{q}": check for (level, q), (_, check) in exports.items()}})
  print(table)
  return 0


def parse_with_precisions(parser, argv):
  """`parser`'s arguments with `--precisions`, the `lth export --quantize` modes to export and
  time, as a checked list."""
  parser.add_argument("--precisions", default=",".join(QUANTIZE),
                      help="the `lth export --quantize` modes to export and time")
  args = parser.parse_args(argv)
  args.precisions = [q for q in args.precisions.split(",") if q]
  for q in args.precisions:
    if q not in QUANTIZE:
      parser.error(f"--precisions: {q!r} is not one of {', '.join(QUANTIZE)}")
  return args


def export_levels(directory, levels, precisions, work, data_dir):
  """{(level, precision): (TFLite path, its check.json)}: the ticket of replicate 0 at each level
  saved under `work/tickets` and exported at each precision under `work/export` by `lth
  export`'s own code; what a previous run left there is reused."""
  exports = {}
  for level in levels:
    ticket = os.path.join(work, "tickets", f"level_{level}")
    if not os.path.isdir(ticket):
      tickets.save(directory, 0, level, ticket, data_dir)
    for q in precisions:
      out = os.path.join(work, "export", f"level_{level}_{q}")
      if not os.path.exists(os.path.join(out, "check.json")):
        ship.ship(ticket, ["tflite"], q, out, data_dir, latency_runs=20)
      exports[(level, q)] = (os.path.join(out, f"model_{q}.tflite"),
                             io.read_json(os.path.join(out, "check.json")))
  return exports


def _splits(args):
  from lth_tf import data as data_lib  # pylint: disable=import-outside-toplevel
  from lth_tf.config import DatasetConfig  # pylint: disable=import-outside-toplevel
  return data_lib.load(DatasetConfig(name=args.dataset, validation_size=args.validation_size),
                       args.data_dir)


def _table(args, exports, medians) -> str:
  from lth_tf.export import xnnpack  # pylint: disable=import-outside-toplevel
  lines = [f"{args.model} on {args.dataset}: one-shot tickets of the 1x1 convolutions (global "
           f"magnitude, rewinding to iteration {args.rewind_iteration}), {args.iterations} "
           f"iterations per training, batch {args.batch_size}, SGD momentum 0.9, learning rate "
           f"{args.learning_rate}. Latency: LiteRT interpreter, default delegate, batch 1, "
           f"median of {args.runs} interleaved rounds after 20 warm-up runs. "
           f"{xnnpack.sparse_kernels_here()[1]}.", "",
           "| network | 1x1 weights kept | precision | bytes | accuracy (TFLite) | "
           "1x1 layers sparse here / by the rules | 1 thread (ms) | vs dense | "
           "2 threads (ms) | vs dense |", "|---|---|---|---|---|---|---|---|---|---|"]
  for (level, q), (path, check) in sorted(exports.items(),
                                         key=lambda kv: (QUANTIZE.index(kv[0][1]), kv[0][0])):
    model = check["models"][os.path.basename(path)]
    layers = [row for row in model["layers"] if row["kernel"].startswith("1x1")]
    sparse = sum(row["runs_here"] == "sparse" for row in layers)
    eligible = sum(row["eligible"] for row in layers)
    kept = _pointwise_density(model["layers"])
    dense_path = exports[(0, q)][0]
    cells = []
    for t in (1, 2):
      mine, dense = medians[t][path], medians[t][dense_path]
      cells += [f"{mine:.3f}" if mine is not None else "refused",
                f"{dense / mine:.2f}x" if mine and dense else "-"]
    name = "dense" if level == 0 else f"ticket, level {level}"
    lines.append(f"| {name} | {100 * kept:.1f}% | {LABEL[q]} | {model['bytes']:,} | "
                 f"{100 * model['accuracy']:.2f}% | {sparse} / {eligible} of {len(layers)} | "
                 f"{cells[0]} | {cells[1]} | {cells[2]} | {cells[3]} |")
  return "\n".join(lines) + "\n"


def _pointwise_density(layers) -> float:
  pointwise = [row for row in layers if row["kernel"].startswith("1x1")]
  sizes = []
  for row in pointwise:
    _, channels = row["kernel"].split(", ")
    cin, cout = (int(c) for c in channels.split("->"))
    sizes.append(cin * cout)
  return sum(row["density"] * s for row, s in zip(pointwise, sizes)) / max(sum(sizes), 1)


if __name__ == "__main__":
  sys.exit(main())
