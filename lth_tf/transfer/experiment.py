"""`lth transfer`: a saved ticket trained on a target dataset, optimizer or budget, beside controls.

Every branch trains the same model (the ticket's) on the same adapted target data, with the same
training schedule, and lands in `<root>/<hash>/replicate_<seed>/level_0/<branch>/` with the files
of a lottery branch; `summary.json` has one row per branch, so `lth report` reads it like any
experiment. Branches (those of `lth_tf.branches` that `lth transfer` enables; `target_ticket`
only when `--target_ticket` is given):
- `ticket`: the transferred ticket, its mask and rewind weights θk, from iteration k.
- `dense`: the unpruned network from a fresh θ0 (the replicate seed), from iteration 0.
- `reinit`: the transferred mask with fresh weights from the same initialiser, from k.
- `random_prune`: a random mask with the transferred mask's per-layer counts, from the same θk.
- `target_ticket`: a ticket found on the target itself, from its own rewind iteration.
All start with a fresh optimizer (the ticket carries no optimizer state; the target optimizer
may differ). When the target has another number of classes than the ticket, the output layer
is replaced: its weights come from a fresh initialisation (seeded by the replicate seed) and its
mask keeps round(d × size) weights drawn uniformly from a seeded generator, where d is the
ticket's output-layer density. Inputs of another shape go through `adapters` (see its rule).
"""
import dataclasses
import hashlib
import json
from typing import Callable, Dict, List, Mapping, Tuple

import numpy as np

from lth_tf import branches as branches_lib
from lth_tf import compute, executors, mechanism, models, pruning, tickets, user_code
from lth_tf import data as data_lib
from lth_tf.config import ExperimentConfig, PruningConfig
from lth_tf.settings import TransferConfig
from lth_tf.validation import validate
from lth_tf.data import modality
from lth_tf.data.base import as_nhwc, prepare
from lth_tf.errors import TicketError, UserError
from lth_tf.lottery import preflight
from lth_tf.lottery.session import open_session
from lth_tf.rundir import (ExperimentLayout, check_data_record, check_engine_record,
                           check_model_record, record_data, record_engine, record_model)
from lth_tf.training import get_weights
from lth_tf.executors import EXECUTORS
from lth_tf.transfer import adapters, tasks
from lth_tf.transfer.tasks import adapt_ticket

def target_config(ticket, base: ExperimentConfig, transfer: TransferConfig,
                  explicit: Mapping[str, Tuple[str, ...]]) -> ExperimentConfig:
  """The config every branch trains with: the target data and budget, the ticket's model, and the
  ticket's training settings overridden by the training flags given explicitly.

  Args:
    ticket: the loaded source ticket.
    base: the config from the flags (dataset budget and split, training, runtime).
    transfer: the transfer flags.
    explicit: per config part, the fields whose flags were given.

  Raises:
    UserError: a missing target, or a flag that would change the ticket's model.
  """
  if not transfer.target_dataset:
    raise UserError("lth transfer needs --target_dataset")
  wrong = [f"--{'dataset' if n == 'name' else n}" for n in explicit.get("dataset", ())
           if n in ("name", "classes")]
  if wrong:
    raise UserError(f"lth transfer takes --target_dataset and --target_classes, not "
                    f"{', '.join(wrong)} (the ticket's data is recorded in the ticket)")
  if explicit.get("model"):
    given = ", ".join(f"--{'model' if name == 'name' else name}" for name in explicit["model"])
    raise UserError(f"lth transfer trains the ticket's model ({ticket.config.model.name}); "
                    f"{given} cannot change it")
  training = dataclasses.replace(ticket.config.training, **{
      name: getattr(base.training, name) for name in explicit.get("training", ())})
  if transfer.target_optimizer:
    training = dataclasses.replace(training, optimizer=transfer.target_optimizer)
  rewind = (base.pruning.rewind_iteration if "rewind_iteration" in explicit.get("pruning", ())
            else ticket.config.pruning.rewind_iteration)
  return validate(base.replace(
      dataset=dataclasses.replace(base.dataset, name=transfer.target_dataset,
                                  classes=tuple(transfer.target_classes)),
      model=ticket.config.model,
      training=training,
      pruning=PruningConfig(rewind_iteration=rewind, ticket_sha256=ticket.sha256)))


def _adapter(raw, config: ExperimentConfig, ticket) -> adapters.Adapter:
  """The adapter from the target's examples to the ticket's input: images are adapted by the
  rule of `lth_tf.transfer.adapters`; other modalities must match the ticket's modality and
  input shape exactly."""
  kind = modality.resolve(config.dataset.modality, raw.x_train)
  if kind.name != ticket.modality:
    raise TicketError(f"the ticket was found on {ticket.modality} inputs, "
                      f"{config.dataset.name} holds {kind.name} data")
  if kind.name == "image":
    return adapters.choose(as_nhwc(raw.x_train[:1], config.dataset.name).shape[1:],
                           ticket.input_shape)
  shape = tuple(np.shape(raw.x_train)[1:])
  if shape != tuple(ticket.input_shape):
    raise TicketError(f"the ticket's model reads {ticket.modality} of shape "
                      f"{tuple(ticket.input_shape)}; {config.dataset.name} has {shape} (only "
                      "images are adapted)")
  return adapters.Adapter(shape, shape, ())


def transfer_hash(config: ExperimentConfig, target_ticket_sha256: str) -> str:
  """Names the experiment directory: the target experiment (data, model, training, ticket
  checksum) and the target ticket's checksum."""
  payload = {"kind": "transfer", "experiment": config.experiment_hash(),
             "target_ticket": target_ticket_sha256}
  text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
  return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


class TransferExperiment:
  """Trains the transferred ticket and its comparison branches on one target (resumable).

  Args:
    config: from `target_config`.
    transfer: the transfer flags (target ticket).
    flags_text: the flags, recorded in the experiment directory.
    log: where one line per finished branch goes.

  Raises:
    UserError: anything wrong with the ticket, target, budget or root directory, before any file
      is written.
  """

  def __init__(self, config: ExperimentConfig, transfer: TransferConfig, flags_text: str = "",
               log: Callable[[str], None] = print):
    config = self.config = validate(user_code.pin_sources(config))
    self.transfer = transfer
    self.flags_text = flags_text
    self.log = log
    if not config.runtime.ticket:
      raise UserError("lth transfer needs --ticket")
    executors.check(config.runtime)
    self.ticket = tickets.read(tickets.resolve(config.runtime.ticket))
    if config.pruning.ticket_sha256 != self.ticket.sha256:
      raise UserError(f"ticket {config.runtime.ticket} does not have checksum "
                      f"{config.pruning.ticket_sha256}")
    if not self.ticket.input_shape or not self.ticket.num_classes:
      raise TicketError("the ticket does not record its input shape and class count")
    self.target_ticket = (tickets.read(tickets.resolve(transfer.target_ticket))
                          if transfer.target_ticket else None)
    self.branches = branches_lib.enabled("transfer", transfer)
    models.check(config.model)
    raw = data_lib.read_raw(config.dataset.name, config.runtime.data_dir,
                            config.dataset.image_size)
    self.adapter = _adapter(raw, config, self.ticket)
    self.data = prepare(adapters.adapt_raw(raw, self.adapter), config.dataset)
    self.layout = ExperimentLayout(config.runtime.root_dir, transfer_hash(
        config, self.target_ticket.sha256 if self.target_ticket else ""))
    session = open_session(config, self.layout, self.data, log, self.write_summary)
    config = self.config = session.config
    self.strategy, self.writes = session.strategy, session.writes
    self.directory, self.store, self.trainer = session.directory, session.store, session.trainer
    self.head_replaced = False
    self._preflight()

  def _preflight(self) -> None:
    preflight.check_budget(self.config, self.data, self.strategy)
    with self.strategy.scope():
      model = pruning.wrap_model(models.build(
          self.config.model, self.data.input_shape, self.data.num_classes, seed=0))
    self.framework = mechanism.of(model).name  # the Keras the model is built in
    self.backend = mechanism.of(model).backend  # and the backend it trains on
    shapes = {n: v.shape for n, v in get_weights(model).items()}
    mask, _, self.head_replaced = adapt_ticket(
        self.ticket, shapes, pruning.layer_kinds(model), self.data.num_classes,
        get_weights(model), seed=0)
    mask.check_fits(pruning.prunable_shapes(model))
    preflight.check_engine(self.config, model, self.strategy)
    if self.target_ticket is not None:
      self._check_target_ticket(model)
    preflight.check_writable(self.config.runtime.root_dir)
    check_data_record(self.layout.data_file, self.data, self.layout.directory)
    check_engine_record(self.layout.engine_file, self.config.runtime, self.layout.directory)
    check_model_record(self.layout.model_file, self.framework, self.layout.directory,
                       self.backend)
    preflight.check_finished_metrics(self.layout, self.branch_slots())

  def _check_target_ticket(self, model) -> None:
    found, target = self.target_ticket.config, self.config
    where = (found.dataset.name, tuple(found.dataset.classes))
    if where != (target.dataset.name, tuple(target.dataset.classes)):
      raise TicketError(f"--target_ticket was found on {where[0]} classes {list(where[1])}, not on "
                        f"the target {target.dataset.name} classes {list(target.dataset.classes)}")
    if found.model.name != target.model.name:
      raise TicketError(f"--target_ticket is a {found.model.name}, the transferred ticket a "
                        f"{target.model.name}")
    if tuple(self.target_ticket.input_shape) != tuple(self.data.input_shape):
      raise TicketError(f"--target_ticket takes inputs {tuple(self.target_ticket.input_shape)}, "
                        f"the adapted target data is {tuple(self.data.input_shape)}")
    if self.target_ticket.config.pruning.rewind_iteration >= self.config.training.iterations:
      raise TicketError("--target_ticket rewinds past the training length")
    self.target_ticket.mask.check_fits(pruning.prunable_shapes(model))

  # ---- the experiment's files -----------------------------------------------------------------

  def search_compute(self) -> Dict:
    """What finding the transferred ticket cost (recorded with the ticket, or estimated)."""
    if self.ticket.search_compute:
      return dict(self.ticket.search_compute, estimated=False)
    source = self.ticket.config
    with self.strategy.scope():
      model = pruning.wrap_model(models.build(source.model, self.ticket.input_shape,
                                              self.ticket.num_classes, seed=0))
    return compute.estimated_search(
        model, self.ticket.mask, int(self.ticket.provenance.get("level", 0)),
        source.training.iterations, source.pruning.rewind_iteration, source.training.batch_size,
        self.ticket.metrics.get("wall_time_s"))

  def description(self) -> Dict:
    """The `transfer` section of config.json: what was transferred to what, and how."""
    ticket = self.ticket
    return {
        **dataclasses.asdict(self.transfer),
        "target_ticket_sha256": self.target_ticket.sha256 if self.target_ticket else "",
        "source": {"ticket": self.config.runtime.ticket, "sha256": ticket.sha256,
                   "dataset": ticket.config.dataset.name,
                   "classes": list(ticket.config.dataset.classes),
                   "optimizer": ticket.config.training.optimizer,
                   "input_shape": list(ticket.input_shape), "num_classes": ticket.num_classes,
                   "weights_remaining": ticket.mask.weights_remaining(),
                   "level": ticket.provenance.get("level"),
                   "experiment_hash": ticket.provenance.get("experiment_hash")},
        "adapter": list(self.adapter.steps),
        "adapter_description": self.adapter.describe(),
        "head_replaced": self.head_replaced,
        "num_classes": self.data.num_classes,
        "train_examples": int(len(self.data.y_train)),
        "search_compute": self.search_compute(),
    }

  def branch_slots(self, seeds=None):
    """Every branch of a transfer trains at level 0 (for `seeds`, this run's by default)."""
    for seed in self.config.runtime.seeds if seeds is None else seeds:
      for branch in self.branches:
        yield seed, 0, branch

  def write_summary(self) -> List[Dict]:
    """The summary of every replicate the directory holds (`RunDirectory.seeds`)."""
    return self.directory.write_summary(self.branch_slots(self.directory.seeds or None))

  def run(self) -> List[Dict]:
    """Trains what is not finished yet and returns the summary rows."""
    return self.directory.locked(self._run_locked, self.config.runtime.deterministic)

  def _run_locked(self) -> List[Dict]:
    if self.writes:
      self.directory.write_config(
          dict(self.config.to_dict(), kind="transfer", transfer=self.description()),
          self.flags_text)
      record_data(self.layout.data_file, self.data, self.layout.directory)
      record_engine(self.layout.engine_file, self.config.runtime, self.layout.directory)
      record_model(self.layout.model_file, self.framework, self.layout.directory,
                   self.backend)
    work = self.work()
    EXECUTORS.get(self.config.runtime.executor)(work, work.graph(self.config.runtime.seeds))
    return self.write_summary()

  # ---- training -------------------------------------------------------------------------------

  def work(self) -> tasks.TransferWork:
    """The transfer's trainings, run through this process's directory (`transfer.tasks`)."""
    spec = tasks.TransferSpec(self.config, self.layout, tuple(self.branches), self.ticket,
                              self.target_ticket)
    return tasks.TransferWork(spec, self.data, self.strategy, self.trainer)


def from_flags(base: ExperimentConfig, transfer: TransferConfig,
               explicit: Mapping[str, Tuple[str, ...]], flags_text: str = "",
               log: Callable[[str], None] = print) -> TransferExperiment:
  """The experiment of `lth transfer` from the parsed flags."""
  if not base.runtime.ticket:
    raise UserError("lth transfer needs --ticket (a saved ticket's directory or shipped name)")
  ticket = tickets.read(tickets.resolve(base.runtime.ticket))
  return TransferExperiment(target_config(ticket, base, transfer, explicit), transfer,
                            flags_text, log)


__all__ = ["TransferExperiment", "adapt_ticket", "from_flags", "target_config", "transfer_hash"]
