"""2:4 tickets on LiteRT: does any runtime here run an N:M structured ticket faster than dense?

Finds a 2:4 ticket (`lth find --pruning_strategy=nm --levels=1`: the dense network trained, level
1 keeps 2 of every 4 consecutive input weights of each layer by trained |w|, rewound to
iteration k and retrained), saves level 0 (dense) and level 1 (2:4) as tickets, exports each
with `lth export` (float32, float16, int8; parity checked there), then times every file
together with `lth_tf.export.latency.interleaved`: the LiteRT interpreter with its default
delegate (XNNPACK) and with the built-in kernels only, batch 1, 1 and 2 threads, warm-up
excluded, the median of `--runs` rounds in which every model runs once in turn; each such call
builds fresh interpreters and is made `--repeats` times, and the table shows the median of the
calls' medians (on loaded cores a 2-thread interpreter's median lands in one of two modes, about
2.5x apart, whichever model it times). The number to read is the ratio of a 2:4 model's
median to the dense model's of the same precision. Writes `<out>/nm_latency.md` and `.json`
(every call's medians, and the load average while timing).

  python benchmarks/nm_latency.py --data_dir=data --out=benchmarks/nm_latency
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lth_tf import api, io  # noqa: E402
from lth_tf.export import latency, ship, xnnpack  # noqa: E402
from mobile_latency import QUANTIZE, export_levels, parse_with_precisions  # noqa: E402  (this folder: the same saving and export)

LABEL = {"none": "float32", "float16": "float16", "int8": "int8"}
DELEGATES = {"default delegate (XNNPACK)": False, "built-in kernels": True}
THREADS = (1, 2)


def _find(args):
  return api.find(
      args.model, args.dataset, log=print, root_dir=os.path.join(args.work, "runs"),
      data_dir=args.data_dir, pruning_strategy="nm", nm=args.nm, levels=1,
      rewind_iteration=args.rewind_iteration, iterations=args.iterations,
      eval_every=args.eval_every, progress=False)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", default="lenet300_100")
  parser.add_argument("--dataset", default="fashion_mnist")
  parser.add_argument("--nm", default="2:4")
  parser.add_argument("--data_dir", default="data")
  parser.add_argument("--out", default="benchmarks/nm_latency")
  parser.add_argument("--work", default="runs/nm_latency")
  parser.add_argument("--iterations", type=int, default=5000)
  parser.add_argument("--eval_every", type=int, default=500)
  parser.add_argument("--rewind_iteration", type=int, default=100)
  parser.add_argument("--runs", type=int, default=500)
  parser.add_argument("--repeats", type=int, default=3)
  args = parse_with_precisions(parser, argv)
  result = _find(args)
  exports = export_levels(result.directory, (0, 1), args.precisions, args.work, args.data_dir)
  paths = [path for path, _ in exports.values()]
  image = ship.raw_test_pixels(_splits(args))[0]
  load_before = os.getloadavg()
  calls = {(delegate, t): [latency.interleaved(paths, image, t, args.runs, builtin_only=builtin)
                           for _ in range(args.repeats)]
           for delegate, builtin in DELEGATES.items() for t in THREADS}
  load_after = os.getloadavg()
  medians = {key: {path: _median([call[path] for call in runs]) for path in paths}
             for key, runs in calls.items()}
  table = _table(args, exports, medians, load_before, load_after)
  os.makedirs(args.out, exist_ok=True)
  io.write_text(os.path.join(args.out, "nm_latency.md"), table)
  io.write_json(os.path.join(args.out, "nm_latency.json"), {
      # No local paths in the record: the settings that define the run, and the experiment hash.
      "args": {k: v for k, v in vars(args).items() if k not in ("data_dir", "work", "out")},
      "experiment_hash": os.path.basename(os.path.normpath(result.directory)),
      "load_average_1_5_15_min": {"before": list(load_before), "after": list(load_after)},
      "medians_ms": {f"{delegate}, {t} threads": {os.path.relpath(p, args.work): m
                                                  for p, m in ms.items()}
                     for (delegate, t), ms in medians.items()},
      "medians_ms_per_call": {f"{delegate}, {t} threads": [
          {os.path.relpath(p, args.work): m for p, m in call.items()} for call in runs]
          for (delegate, t), runs in calls.items()},
      "checks": {f"level_{level}_{q}": check for (level, q), (_, check) in exports.items()}})
  print(table)
  return 0


def _median(values):
  """The median of the calls' medians; None when the interpreter refused the model."""
  return None if None in values else float(np.median(values))


def _splits(args):
  from lth_tf import data as data_lib  # pylint: disable=import-outside-toplevel
  from lth_tf.config import DatasetConfig  # pylint: disable=import-outside-toplevel
  return data_lib.load(DatasetConfig(name=args.dataset), args.data_dir)


def _table(args, exports, medians, load_before, load_after) -> str:
  lines = [f"{args.model} on {args.dataset}: the dense network and its {args.nm} ticket "
           f"(`--pruning_strategy=nm --levels=1`, rewinding to iteration "
           f"{args.rewind_iteration}), {args.iterations} iterations per training. Latency: "
           f"LiteRT interpreter, batch 1, median of {args.repeats} calls' medians of {args.runs} "
           f"interleaved rounds after 20 warm-up runs; ratio = dense median / this model's median, same call. Load average "
           f"(1 min) {load_before[0]:.2f} before timing, {load_after[0]:.2f} after, on "
           f"{os.cpu_count()} cores. {xnnpack.sparse_kernels_here()[1]}.", "",
           "| network | precision | bytes | accuracy (TFLite) | N:M layers | "
           + " | ".join(f"{d}, {t} thr. (ms) | vs dense" for d in DELEGATES for t in THREADS)
           + " |", "|---|---|---|---|---|" + "---|---|" * len(DELEGATES) * len(THREADS)]
  for (level, q), (path, check) in sorted(exports.items(),
                                         key=lambda kv: (QUANTIZE.index(kv[0][1]), kv[0][0])):
    model = check["models"][os.path.basename(path)]
    structured = sum(bool(row.get("structure")) for row in model["layers"])
    dense_path = exports[(0, q)][0]
    cells = []
    for delegate in DELEGATES:
      for t in THREADS:
        mine, dense = medians[(delegate, t)][path], medians[(delegate, t)][dense_path]
        cells += [f"{mine:.4f}" if mine is not None else "refused",
                  f"{dense / mine:.2f}x" if mine and dense else "-"]
    name = "dense" if level == 0 else f"{args.nm} ticket"
    lines.append(f"| {name} | {LABEL[q]} | {model['bytes']:,} | {100 * model['accuracy']:.2f}% | "
                 f"{structured} of {len(model['layers'])} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


if __name__ == "__main__":
  sys.exit(main())
