"""Conv-2 on CIFAR-10 under Keras 3's JAX backend: steps per second and the ticket's accuracy.

    python benchmarks/jax_conv2.py                       # on JAX's default device (a GPU if any)
    python benchmarks/jax_conv2.py --iterations=40 --levels=1 --dataset=synthetic_cifar  # a smoke run

The route by which lth_tf reaches an accelerator that runs JAX and not TensorFlow: it imports no
TensorFlow (KERAS_BACKEND=jax is set before anything is imported). It runs the Conv-2 CIFAR-10
preset (flags/conv2_cifar10.flags: Adam 2e-4, batch 60, conv 10% / fc 20% / output 10% per
round, reset to the initial weights) built in Keras 3 (`--framework=keras3`), shortened to
`--iterations` per training and `--levels` rounds with the re-init control, then prints:

- the device JAX trains on;
- steady-state steps per second: one chunk of `--timed_steps` iterations of the dense network,
  after a first chunk that compiles (median of `--repeats`);
- per branch: test accuracy at early stop and at the end, weights remaining, and its training's
  steps per second including evaluations and compilation (`wall_time_s` of its metrics).

Defaults (5,000 iterations, 2 levels: five trainings) take about 2 minutes on one H100-class GPU
by the per-step estimate; on a 2-core CPU about 50 ms a step, so use the smoke settings there.
CIFAR-10 is read from `<data_dir>/cifar10.npz` (`lth data install`); `--dataset=synthetic_cifar`
needs no files.
"""
import argparse
import json
import os
import statistics
import sys
import time

os.environ["KERAS_BACKEND"] = "jax"
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PRESET = {"framework": "keras3", "validation_size": 5000, "optimizer": "adam",
          "learning_rate": 2e-4, "batch_size": 60, "pruning_strategy": "magnitude",
          "scope": "layerwise", "conv_rate": 0.1, "fc_rate": 0.2, "output_rate": 0.1,
          "rewind_iteration": 0, "reinit": True}


def _arguments(argv):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--dataset", default="cifar10")
  parser.add_argument("--data_dir", default="data")
  parser.add_argument("--iterations", type=int, default=5000)
  parser.add_argument("--eval_every", type=int, default=0, help="default: iterations / 5")
  parser.add_argument("--levels", type=int, default=2)
  parser.add_argument("--validation_size", type=int, default=5000)
  parser.add_argument("--timed_steps", type=int, default=500)
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--root_dir", default="runs/benchmarks_jax_conv2")
  parser.add_argument("--out", default="", help="also write the results here as JSON")
  return parser.parse_args(argv)


def steady_steps_per_second(data, settings, timed_steps: int, repeats: int) -> float:
  """Median steps per second of the dense Conv-2 over chunks of `timed_steps`, compiled first."""
  from lth_tf import models, pruning  # pylint: disable=import-outside-toplevel
  from lth_tf.config import ModelConfig, RuntimeConfig, TrainingConfig  # pylint: disable=import-outside-toplevel
  from lth_tf.training.jax_trainer import JaxTrainer  # pylint: disable=import-outside-toplevel
  model = pruning.wrap_model(models.build(ModelConfig(name="conv2", framework="keras3"),
                                          data.input_shape, data.num_classes, seed=0))
  training = TrainingConfig(optimizer="adam", learning_rate=settings["learning_rate"],
                            batch_size=settings["batch_size"], iterations=10**9,
                            eval_every=timed_steps)
  trainer = JaxTrainer(model, data, training, RuntimeConfig(progress=False), seed=0)
  trainer.train_chunk(0, timed_steps)  # compiles
  rates = []
  for repeat in range(repeats):
    start = time.perf_counter()
    trainer.train_chunk((repeat + 1) * timed_steps, (repeat + 2) * timed_steps)  # syncs
    rates.append(timed_steps / (time.perf_counter() - start))
  return statistics.median(rates)


def main(argv=None) -> dict:
  args = _arguments(sys.argv[1:] if argv is None else argv)
  import jax  # pylint: disable=import-outside-toplevel
  from lth_tf import api  # pylint: disable=import-outside-toplevel
  from lth_tf import data as data_lib  # pylint: disable=import-outside-toplevel
  from lth_tf.config import DatasetConfig  # pylint: disable=import-outside-toplevel
  settings = dict(PRESET, iterations=args.iterations, levels=args.levels,
                  eval_every=args.eval_every or max(1, args.iterations // 5),
                  validation_size=args.validation_size, root_dir=args.root_dir,
                  data_dir=args.data_dir, progress=False)
  device = str(jax.devices()[0])
  print(f"JAX {jax.__version__} on {device} ({jax.default_backend()})", flush=True)
  data = data_lib.load(DatasetConfig(name=args.dataset, validation_size=args.validation_size),
                       args.data_dir)
  rate = steady_steps_per_second(data, settings, args.timed_steps, args.repeats)
  print(f"steady state: {rate:.1f} steps/s (dense Conv-2, batch {settings['batch_size']}, "
        f"median of {args.repeats} chunks of {args.timed_steps})", flush=True)
  result = api.find("conv2", args.dataset, log=lambda line: print(line, flush=True), **settings)
  branches = []
  for row in result.rows:
    metrics_file = os.path.join(result.directory, f"replicate_{row['replicate']}",
                                f"level_{row['level']}", row["branch"], "metrics.json")
    with open(metrics_file) as handle:
      metrics = json.load(handle)
    branches.append({
        "level": row["level"], "branch": row["branch"],
        "weights_remaining": metrics["weights_remaining"],
        "early_stop_test_accuracy": metrics["early_stop_test_accuracy"],
        "final_test_accuracy": metrics["final_test_accuracy"],
        "steps_per_second": metrics["iterations_trained"] / metrics["wall_time_s"]})
  print("level  branch  remaining  es test acc  final test acc  steps/s (with evaluations)")
  for b in branches:
    print(f"{b['level']:5d}  {b['branch']:6s}  {100 * b['weights_remaining']:8.2f}%  "
          f"{100 * b['early_stop_test_accuracy']:10.2f}%  {100 * b['final_test_accuracy']:13.2f}%  "
          f"{b['steps_per_second']:8.1f}")
  out = {"device": device, "jax": jax.__version__, "dataset": args.dataset,
         "iterations": args.iterations, "levels": args.levels,
         "steady_steps_per_second": rate, "branches": branches,
         "tensorflow_imported": "tensorflow" in sys.modules}
  print(f"tensorflow imported: {out['tensorflow_imported']}")
  if args.out:
    with open(args.out, "w") as handle:
      json.dump(out, handle, indent=2)
  return out


if __name__ == "__main__":
  main()
