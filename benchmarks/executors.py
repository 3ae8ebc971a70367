"""The executors side by side, and what the task graph says more machines would give.

Measured (`--measure`): whole `lth find` commands on `--flagfile` (the README demo) with
`--seeds`, under the local executor and under `--executor=ray` (a local Ray cluster the command
starts: one worker process per core), in alternating order over `--rounds` rounds. The ray
run's directory gives the time of every training (`metrics.json`'s `wall_time_s`).

On paper: the task graph `lth find` builds (`lth_tf.lottery.tasks.FindWork.graph`) for
`--preset` with `--preset_seeds` seeds and its branches is scheduled on M identical machines of
one worker each, greedily in graph order (a task starts on the first free machine once the
tasks it waits for are done). A training's time is its iterations times the seconds per
iteration the measured run gives per level (level 0 dense, the pruned levels); a level's mask
takes `--mask_s`. Printed: the total work, the critical path, the expected wall time on 1, 4,
16 and 64 machines, and the model's wall time for the measured run beside the measurement
(2 machines, the measured seconds per training), which says what the model leaves out: Ray's
start-up, a worker's TensorFlow start-up and graph tracing, and the writer's time.

  python benchmarks/executors.py --measure --data_dir=data --out=benchmarks/executors.json
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import types

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def _graph(flagfile: str, seeds: str, extra=()):
  """The task graph of `lth find` with these flags: [(task, deps)] of a new experiment."""
  # pylint: disable=import-outside-toplevel
  from absl import flags as absl_flags
  from lth_tf import flags as flags_lib
  from lth_tf import branches as branches_lib
  from lth_tf.lottery.store import MemoryStore
  from lth_tf.lottery.tasks import FindSpec, FindWork
  from lth_tf.rundir import ExperimentLayout
  if "levels" not in absl_flags.FLAGS:
    flags_lib.define_flags()
  absl_flags.FLAGS.unparse_flags()
  absl_flags.FLAGS(["lth", f"--flagfile={flagfile}", f"--seeds={seeds}", *extra])
  config = flags_lib.config_from_flags()
  spec = FindSpec(config, ExperimentLayout.for_config(config),
                  tuple(branches_lib.enabled("find", config)))
  work = FindWork(spec, None, None, types.SimpleNamespace(store=MemoryStore()))
  return config, work.graph(config.runtime.seeds)


def schedule(graph, duration, machines: int) -> float:
  """The wall time of `graph` on `machines` workers, greedily in graph order."""
  finish, free = {}, [0.0] * machines
  for task, deps in graph:
    ready = max((finish[d] for d in deps), default=0.0)
    index = int(np.argmin([max(f, ready) for f in free]))
    start = max(free[index], ready)
    finish[task] = free[index] = start + duration(task)
  return max(finish.values())


def critical_path(graph, duration) -> float:
  longest = {}
  for task, deps in graph:
    longest[task] = duration(task) + max((longest[d] for d in deps), default=0.0)
  return max(longest.values())


def _measure(args):
  lth = [sys.executable, "-m", "lth_tf.cli", "find", f"--flagfile={args.flagfile}",
         f"--seeds={args.seeds}", f"--data_dir={args.data_dir}", "--progress=false"]
  variants = {"local": [], "ray": ["--executor=ray"]}
  walls = {name: [] for name in variants}
  keep = tempfile.mkdtemp()
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  for round_index in range(args.rounds):
    names = list(variants)[round_index % 2:] + list(variants)[:round_index % 2]
    for name in names:
      root = os.path.join(keep, f"{name}_{round_index}")
      started = time.time()
      subprocess.run(lth + variants[name] + [f"--root_dir={root}"], cwd=REPO, env=env,
                     check=True, capture_output=True)
      walls[name].append(time.time() - started)
      print(f"round {round_index} {name}: {walls[name][-1]:.1f} s", flush=True)
  return walls, {name: trainings(os.path.join(keep, f"{name}_0")) for name in variants}


def trainings(root):
  """(replicate, level, branch, wall seconds) of every finished training under `root`."""
  out = []
  for dirpath, _, files in os.walk(root):
    if "metrics.json" in files:
      with open(os.path.join(dirpath, "metrics.json"), encoding="utf-8") as handle:
        metrics = json.load(handle)
      out.append((metrics["replicate"], metrics["level"], metrics["branch"],
                  metrics["wall_time_s"]))
  return sorted(out)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--measure", action="store_true")
  parser.add_argument("--flagfile", default="flags/demo.flags")
  parser.add_argument("--seeds", default="0,1,2")
  parser.add_argument("--data_dir", default="data")
  parser.add_argument("--rounds", type=int, default=1)
  parser.add_argument("--workers", type=int, default=2, help="worker processes of the measured "
                      "ray run (one per core)")
  parser.add_argument("--preset", default="flags/lenet300_fashion_mnist.flags")
  parser.add_argument("--preset_seeds", default="0,1,2,3,4")
  parser.add_argument("--preset_branches", default="--random_prune=true")
  parser.add_argument("--mask_s", type=float, default=0.5)
  parser.add_argument("--from_json", default="", help="a previous --out instead of measuring")
  parser.add_argument("--from_dirs", default="", help="LOCAL_ROOT,RAY_ROOT,LOCAL_S,RAY_S: the "
                      "directories and wall times of runs made before, instead of measuring")
  parser.add_argument("--out", default="")
  args = parser.parse_args()
  os.chdir(REPO)
  if args.from_json:
    with open(args.from_json, encoding="utf-8") as handle:
      report = json.load(handle)
    walls, timed = report["measured_wall_s"], report["trainings"]
  elif args.from_dirs:
    local_root, ray_root, local_s, ray_s = args.from_dirs.split(",")
    walls = {"local": [float(local_s)], "ray": [float(ray_s)]}
    timed = {"local": trainings(local_root), "ray": trainings(ray_root)}
  elif args.measure:
    walls, timed = _measure(args)
  else:
    parser.error("--measure, --from_json or --from_dirs")
  config, measured_graph = _graph(args.flagfile, args.seeds)
  # A machine of this kind trains one network at a time, as the local run does.
  per_iteration = {}
  for _, level, _, seconds in timed["local"]:
    per_iteration.setdefault(min(level, 1), []).append(seconds / config.training.iterations)
  per_iteration = {k: float(np.median(v)) for k, v in per_iteration.items()}
  measured = {(s, l, b): w for s, l, b, w in timed["ray"]}

  def measured_duration(task):
    if task.kind == "mask":
      return args.mask_s
    return measured[(task.seed, task.level, "ticket" if task.kind == "level0" else task.branch)]

  model_measured = schedule(measured_graph, measured_duration, args.workers)
  preset, graph = _graph(args.preset, args.preset_seeds, args.preset_branches.split())

  def preset_duration(task):
    if task.kind == "mask":
      return args.mask_s
    return per_iteration[min(task.level, 1)] * preset.training.iterations

  total = sum(preset_duration(task) for task, _ in graph)
  path = critical_path(graph, preset_duration)
  machines = {m: schedule(graph, preset_duration, m) for m in (1, 4, 16, 64)}
  trainings_count = sum(1 for task, _ in graph if task.kind != "mask")
  report = {
      "measured_command": f"lth find --flagfile={args.flagfile} --seeds={args.seeds}",
      "measured_wall_s": walls,
      "trainings": timed,
      "training_s_median": {name: float(np.median([t[3] for t in rows]))
                            for name, rows in timed.items()},
      "model_of_measured_run_s": model_measured,
      "seconds_per_iteration": per_iteration,
      "preset": f"{args.preset} --seeds={args.preset_seeds} {args.preset_branches}",
      "preset_tasks": len(graph), "preset_trainings": trainings_count,
      "total_work_s": total, "critical_path_s": path,
      "expected_wall_s": machines,
  }
  print("median training: " + ", ".join(f"{name} {value:.2f} s" for name, value in
                                         report["training_s_median"].items()))
  print("measured: " + ", ".join(f"{name} {float(np.median(v)):.1f} s" for name, v in walls.items())
        + f"; the model of that ray run on {args.workers} workers: {model_measured:.1f} s")
  print(f"{report['preset']}: {len(graph)} tasks ({trainings_count} trainings), work "
        f"{total / 3600:.1f} h, critical path {path / 3600:.2f} h")
  for m, seconds in machines.items():
    print(f"  {m:>2} machines: {seconds / 3600:.2f} h ({total / seconds:.1f}x one machine)")
  if args.out:
    with open(args.out, "w", encoding="utf-8") as handle:
      json.dump(report, handle, indent=1)


if __name__ == "__main__":
  main()
