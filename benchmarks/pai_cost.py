"""What finding each mask costs: the seconds SynFlow, SNIP, GraSP (and one magnitude prune) take to
score and prune LeNet-300-100 at θ0 to 51.28, 21.07, 6.95 and 2.31% of its weights, on
Fashion-MNIST (the settings of `benchmarks/pai_lenet300.sh`), against one 5,000-iteration
training, the unit IMP pays once per level.

Each figure is the median of `--repeats` calls of `pruning.next_mask` in this process after one
warm-up call (graph tracing excluded), on the model `lth find` builds for seed 0.

  .venv/bin/python benchmarks/pai_cost.py --data_dir=data --out=benchmarks/pai_lenet300/cost.md
"""
import argparse
import statistics
import time

from lth_tf import data as data_lib
from lth_tf import distribute, pruning
from lth_tf.config import (DatasetConfig, ExperimentConfig, ModelConfig, PruningConfig,
                           RuntimeConfig, TrainingConfig)
from lth_tf.lottery.replicate import ReplicateModel

RATES = (0.487186, 0.789279, 0.930481, 0.976942)
METHODS = ("synflow", "snip", "grasp")


def _config(strategy: str, rate: float, data_dir: str) -> ExperimentConfig:
  return ExperimentConfig(
      dataset=DatasetConfig(name="fashion_mnist", validation_size=5000),
      model=ModelConfig("lenet300_100"),
      training=TrainingConfig(optimizer="adam", learning_rate=0.0012, batch_size=60,
                              iterations=5000, eval_every=250),
      pruning=PruningConfig(strategy=strategy, global_rate=rate, levels=1, mode="one_shot",
                            fc_rate=0.2, output_rate=0.1, rewind_iteration=0),
      runtime=RuntimeConfig(data_dir=data_dir, progress=False))


def _median_seconds(call, repeats: int) -> float:
  call()  # warm-up: traces the graph functions
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    call()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data_dir", default="data")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--out", default="")
  args = parser.parse_args()
  base = _config("magnitude", 0.0, args.data_dir)
  splits = data_lib.load(base.dataset, args.data_dir)
  replicate = ReplicateModel(base, splits, 0, distribute.make_strategy(base.runtime))
  theta0 = replicate.initial_weights
  dense = pruning.Mask.ones_like(pruning.prunable_weights(replicate.model))
  rows = ["| method | weights remaining | seconds to score and prune (median) |", "|---|---|---|"]
  for method in METHODS + ("magnitude",):
    for rate in RATES if method != "magnitude" else (None,):
      config = _config(method, rate or 0.0, args.data_dir)

      def prune(config=config):
        pruning.set_mask(replicate.model, dense)
        return pruning.next_mask(config.pruning, replicate.kinds, theta0, dense, seed=0,
                                 model=replicate.model, batch=splits.batch)

      mask = prune()
      seconds = _median_seconds(prune, args.repeats)
      where = f"{100 * mask.weights_remaining():.2f}%" if rate else "one IMP round (layerwise)"
      rows.append(f"| {method} | {where} | {seconds:.3f} |")
      print(rows[-1], flush=True)
  replicate.load_state(theta0, dense, None)
  train = _median_seconds(lambda: replicate.trainer.fit(0), 1)
  rows.append(f"| one 5,000-iteration training (dense, what IMP pays per level) | 100% | "
              f"{train:.1f} |")
  print(rows[-1])
  if args.out:
    with open(args.out, "w") as handle:
      handle.write("\n".join(rows) + "\n")


if __name__ == "__main__":
  main()
