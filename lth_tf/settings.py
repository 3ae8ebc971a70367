"""The settings of the commands that study experiments: `lth transfer` (recorded in its
directory's `config.json`), `lth tune` and `lth stability`. Their checks are
`lth_tf.validation`; their flags are generated from them (`lth_tf.flags`).
"""
import dataclasses
from typing import Tuple


@dataclasses.dataclass(frozen=True)
class TransferConfig:
  """What `lth transfer` trains a saved ticket (`--ticket`) on; the budget and schedule come from
  the dataset and training flags (training flags not given keep the ticket's values).

  Attributes:
    target_dataset: the dataset to transfer the ticket to (any name `--dataset` accepts).
    target_classes: if non-empty, keep only these target class labels (relabelled 0..n-1).
    target_optimizer: `adam` or `sgd`; empty keeps the ticket's optimizer.
    target_ticket: a ticket found on the target itself (same model, input shape and classes),
      trained beside the transferred one as the `target_ticket` branch; empty: none.
  """
  target_dataset: str = ""
  target_classes: Tuple[int, ...] = ()
  target_optimizer: str = ""
  target_ticket: str = ""


@dataclasses.dataclass(frozen=True)
class TuningConfig:
  """How `lth tune` searches the hyperparameters that make tickets appear.

  Attributes:
    tuner: the keras-tuner search: `random`, `bayesian` or `hyperband`.
    max_trials: the number of trials (hyperparameter sets) to train.
    target_weights_remaining: the density the objective is read at: a trial prunes until
      this fraction of the weights remains and its objective is the ticket's validation
      accuracy (at early stop) at the level closest to it.
    tune_dir: where trials, results (`results.md`, `results.csv`) and `best.flags` are written.
    tune_params: the hyperparameters searched: rewind_iteration, learning_rate,
      warmup_iterations, pruning_rate, pruning_scope, pruning_strategy.
    tuner_seed: seed of the search.
    max_levels: a trial never prunes more rounds than this.
    rewind_fraction: the rewind iteration is searched in [0, rewind_fraction * iterations].
    warmup_fraction: warm-up is searched in [0, warmup_fraction * iterations] iterations.
    learning_rate_factor: the learning rate is searched log-uniformly in
      [learning_rate / F, learning_rate * F].
    pruning_rate_min, pruning_rate_max: the range of the per-round pruning rate (of the hidden
      layers and of global pruning; convolution and output rates keep their ratio to it).
    hyperband_budget: hyperband's largest budget B: a trial with budget b trains
      b / B of --iterations.
  """
  tuner: str = "random"
  max_trials: int = 10
  target_weights_remaining: float = 0.2
  tune_dir: str = "tuning"
  tune_params: Tuple[str, ...] = ("rewind_iteration", "learning_rate", "warmup_iterations",
                                  "pruning_rate", "pruning_scope")
  tuner_seed: int = 0
  max_levels: int = 20
  rewind_fraction: float = 0.1
  warmup_fraction: float = 0.1
  learning_rate_factor: float = 10.0
  pruning_rate_min: float = 0.1
  pruning_rate_max: float = 0.5
  hyperband_budget: int = 3


@dataclasses.dataclass(frozen=True)
class StabilityConfig:
  """What `lth stability` measures on an experiment (linear mode connectivity, Frankle et al.
  2020): two copies of a level's branch trained from its start point with different data
  orders, evaluated along the linear path between them.

  Attributes:
    levels: the levels tested; empty: every level. A level >= 1 starts each branch from its
      plan (the ticket from θk ⊙ m); level 0 starts the dense network from the rewind point θk
      (θ0 when k = 0), with the optimizer state its levels rewind to.
    branches: the branches tested at each level >= 1 (level 0 has the ticket only).
    replicates: the replicates (seeds) tested; empty: every replicate of the experiment.
    points: evenly spaced points strictly inside the linear path between the two trained
      copies (the paper: 30); both endpoints are evaluated too.
    train_examples: the size of the fixed training subset the path is evaluated on besides
      the test set (every training example if there are fewer).
    normalisation: what the BatchNorm statistics are along the path: `recompute` (on training
      batches at every point; the usual choice) or `interpolate` (linearly, as the weights).
      Networks without BatchNorm are not affected.
    normalisation_batches: with `recompute`, how many training batches (of the training batch
      size, the same at every point) the statistics are averaged over.
  """
  levels: Tuple[int, ...] = ()
  branches: Tuple[str, ...] = ("ticket",)
  replicates: Tuple[int, ...] = ()
  points: int = 30
  train_examples: int = 10000
  normalisation: str = "recompute"
  normalisation_batches: int = 20
