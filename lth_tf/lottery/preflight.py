"""What `lth find`, `lth train` and `lth transfer` check before anything is written or trained.

Each check raises a one-line `UserError` (or a subclass) that says what is wrong and what to do.
The experiments call them from their constructors, so a refusal leaves no file behind.
"""
import os
import tempfile
from typing import Callable, Iterable, Mapping, Tuple

from lth_tf import branches, compat, distribute, io, mechanism, pruning, tickets
from lth_tf.config import ExperimentConfig
from lth_tf.errors import UserError
from lth_tf.pruning import structure
from lth_tf.rundir import SUMMARY_KEYS, BranchFiles, ExperimentLayout
from lth_tf.training import loop


def check_budget(config: ExperimentConfig, data, strategy) -> None:
  """The batch fits the training split (and divides over the strategy's replicas)."""
  if config.training.batch_size > len(data.y_train):
    raise UserError(f"batch_size {config.training.batch_size} exceeds the "
                    f"{len(data.y_train)} training examples")
  if distribute.uses_replica_steps(strategy):
    distribute.check_batch_size(strategy, config.training.batch_size, config.runtime.strategy)


def check_modality(config: ExperimentConfig, model, data) -> None:
  """Token ids go to a model that embeds them, and only such a model reads token ids: an
  Embedding silently truncates real-valued inputs to integers, and any other first layer would
  multiply ids as if they were measurements."""
  embeds = any(isinstance(layer, mechanism.of(layer).keras.layers.Embedding)
               for layer in structure.descendants(model))
  if data.modality == "tokens" and not embeds:
    raise UserError(f"{config.dataset.name} holds token ids, but model {config.model.name} has "
                    "no Embedding layer to read them (an image or feature model would multiply "
                    "ids as numbers); give a model that embeds them, or --modality=tabular if "
                    "they are integer features")
  if data.modality != "tokens" and embeds:
    raise UserError(f"model {config.model.name} embeds token ids, but {config.dataset.name} "
                    f"holds {data.modality} data; give integer token ids (N, T) or "
                    "--modality=tokens")
  if config.pruning.strategy == "synflow" and (embeds or not structure.graph_inputs(model)):
    raise UserError(f"--pruning_strategy=synflow scores model {config.model.name} on one "
                    "all-ones input: " + ("it would look up one token id and score every other "
                                          "embedding row 0" if embeds else
                                          "a subclassed model has no input shape to build it")
                    + "; choose another strategy")


def check_engine(config: ExperimentConfig, model, strategy) -> None:
  """The step engine's rules for this model and strategy (`training.loop.check_engine`), which
  every replicate's trainer would otherwise apply only after `config.json` is written."""
  loop.check_engine(model, config.training, config.runtime, strategy)


def check_strategy(config: ExperimentConfig, names: Iterable[str]) -> None:
  """The level loop gives the strategy all it may need (the model, seeded batches, θk), the
  strategy's options and level count suit it, and every enabled branch gets what its plan
  reads (the strategy's scores for `invert`)."""
  if compat.on_jax():  # a strategy that scores with the model takes TensorFlow's gradients
    pruning.check_inputs(config.pruning, ("rewind_weights",),
                         "lth find on JAX (its scores take TensorFlow's gradients)")
  pruning.check_inputs(config.pruning, ("model", "batch", "rewind_weights"), "lth find")
  pruning.check_config(config.pruning)
  check_branch_needs(names, ("scores",) if pruning.has_scores(config.pruning) else (),
                     f"--pruning_strategy={config.pruning.strategy}")


def check_levels(config: ExperimentConfig, kinds: Mapping[str, str],
                 shapes: Mapping[str, Tuple[int, ...]]) -> None:
  """Refuses levels past the one whose round would prune no weight (`pruning.first_idle_level`):
  they would train the same mask again (and `--levels=1000000000` would enumerate its slots)."""
  idle = pruning.first_idle_level(config.pruning, kinds, shapes)
  if idle is not None:
    raise UserError(f"--levels={config.pruning.levels}: level {idle} would prune no weight (the "
                    "rates round to zero on what earlier levels leave), nor would any level "
                    f"after it; give --levels={idle - 1} or fewer, or higher rates")


def check_model_fits_strategy(config: ExperimentConfig, model, kinds: Mapping[str, str],
                              log: Callable[[str], None]) -> None:
  """The strategy's own check of the wrapped model's prunable weights, whose layer kinds are
  `kinds` (`pruning.check_model`: N:M refuses a model it can prune no layer of); its notes (the
  layers it leaves dense) go to `log`."""
  for line in pruning.check_model(config.pruning, kinds, pruning.prunable_weights(model)):
    log(line)


def check_branch_needs(names: Iterable[str], available: Iterable[str], why: str) -> None:
  """Every enabled branch gets what its plan reads (`Branch.needs`, e.g. the strategy's
  `scores`); `why` says what decides what is available."""
  for name in names:
    missing = [need for need in branches.BRANCHES.get(name).needs if need not in set(available)]
    if missing:
      raise UserError(f"branch {name!r} needs the pruning strategy's {' and '.join(missing)}, "
                      f"which {why} does not have (a strategy that ranks weights by a score "
                      "does)")


def load_ticket(config: ExperimentConfig):
  """The saved ticket level 0 starts from, verified against the config's checksum; or None."""
  if not config.runtime.ticket:
    if config.pruning.ticket_sha256:
      raise UserError("ticket_sha256 is set but no --ticket is given")
    return None
  ticket = tickets.read(tickets.resolve(config.runtime.ticket))
  if config.pruning.ticket_sha256 and config.pruning.ticket_sha256 != ticket.sha256:
    raise UserError(f"ticket {config.runtime.ticket} does not have checksum "
                    f"{config.pruning.ticket_sha256}")
  return ticket


def check_readable(path: str, directory: str, kind: str) -> None:
  """A finished branch's file a resume reads (metrics with the summary keys, or arrays) must
  be sound; otherwise one line saying which `kind` of directory to delete to retrain it."""
  try:
    if path.endswith(".json"):
      metrics = io.read_json(path)
      if not isinstance(metrics, dict) or any(key not in metrics for key in SUMMARY_KEYS):
        raise UserError(f"{path}: not a finished branch's metrics")
    else:
      io.read_arrays(path)
  except UserError as error:
    raise UserError(f"{error}; delete {directory} and rerun to retrain that {kind}") from None


def check_finished_metrics(layout: ExperimentLayout, slots: Iterable[Tuple[int, int, str]]) -> None:
  """Every finished branch's metrics (what a resume reads first) are readable."""
  for seed, level, branch in slots:
    files = BranchFiles(layout.branch_dir(seed, level, branch))
    if os.path.exists(files.metrics):
      check_readable(files.metrics, files.directory, "branch")


def check_saved_masks(layout: ExperimentLayout, slots: Iterable[Tuple[int, int, str]],
                      shapes: Mapping[str, Tuple[int, ...]]) -> None:
  """Every mask a resume would reuse is readable and fits the model."""
  for seed, level, branch in slots:
    saved = BranchFiles(layout.branch_dir(seed, level, branch)).mask
    if os.path.exists(saved):
      check_readable(saved, os.path.dirname(saved), "branch")
      pruning.Mask.from_dict(io.read_arrays(saved)).check_fits(shapes)


def check_level_sources(config: ExperimentConfig, layout: ExperimentLayout,
                        slots: Iterable[Tuple[int, int, str]]) -> None:
  """What a resume of the level loop reads before it trains again: the rewind point of every
  replicate whose level 0 is finished, and the trained weights and mask that each level with
  an unfinished branch is planned from."""
  one_shot = config.pruning.mode == "one_shot"
  seeds, pending = set(), set()
  for seed, level, branch in slots:
    seeds.add(seed)
    if level and not os.path.exists(BranchFiles(layout.branch_dir(seed, level, branch)).metrics):
      pending.add((seed, level))
  for seed, level in sorted(pending):
    source = BranchFiles(layout.branch_dir(seed, 0 if one_shot else level - 1, "ticket"))
    if os.path.exists(source.metrics):
      for path in (source.final_weights,) if one_shot else (source.final_weights, source.mask):
        check_readable(path, source.directory, "branch")
  for seed in sorted(seeds):
    if os.path.exists(BranchFiles(layout.branch_dir(seed, 0, "ticket")).metrics):
      check_readable(layout.rewind_file(seed), layout.replicate_dir(seed), "replicate")


def check_writable(root: str) -> None:
  """`root` is a directory that exists or can be created, and something can be written in it."""
  if os.path.exists(root) and not os.path.isdir(root):
    raise UserError(f"root_dir {root} exists and is not a directory")
  parent = root if os.path.isdir(root) else os.path.dirname(os.path.abspath(root))
  while not os.path.exists(parent):
    parent = os.path.dirname(parent)
  if not os.path.isdir(parent):
    raise UserError(f"root_dir {root} cannot be created: {parent} is not a directory")
  if not os.access(parent, os.W_OK):
    raise UserError(f"root_dir {root} is not writable")
  try:  # root may pass os.access where nothing can be created (/proc, a read-only mount)
    os.rmdir(tempfile.mkdtemp(prefix=io.TEMP_PREFIX, dir=parent))
  except OSError as error:
    raise UserError(f"root_dir {root} cannot be created in {parent}: "
                    f"{os.strerror(error.errno).lower() if error.errno else error}") from None
