"""The saved-ticket format: data only (npz + JSON), checksummed, never unpickled.

A ticket is a directory with two files:
- `ticket.npz`: `mask/<weight>` bit-packed keep-bits (`numpy.packbits`) with `mask_shape/<weight>`,
  `rewind/<weight>` the weights the ticket starts from (θk, unmasked) and `trained/<weight>` the
  weights it reached when trained, for every weight of the model, batch-norm statistics included.
- `ticket.json`: the experiment config, the level's metrics, provenance (experiment hash, code
  version, replicate, level), the model's input shape, class count and input normalisation, and
  the SHA-256 of `ticket.npz`.
"""
import dataclasses
import hashlib
import os
from typing import Any, Dict, Tuple

import numpy as np

from lth_tf import __version__, io
from lth_tf.config import ExperimentConfig
from lth_tf.errors import ConfigError, TicketError
from lth_tf.lottery import BranchFiles, ExperimentLayout
from lth_tf.pruning import Mask

FORMAT_VERSION = 1
ARRAYS, METADATA = "ticket.npz", "ticket.json"


@dataclasses.dataclass(frozen=True)
class Ticket:
  """A loaded ticket: what to train (mask, start weights) and where it came from."""
  mask: Mask
  rewind_weights: Dict[str, np.ndarray]
  config: ExperimentConfig
  metrics: Dict[str, Any]
  provenance: Dict[str, Any]
  sha256: str = ""
  trained_weights: Dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
  input_shape: Tuple[int, ...] = ()
  num_classes: int = 0
  mean: Tuple[float, ...] = ()
  std: Tuple[float, ...] = ()
  search_compute: Dict[str, Any] = dataclasses.field(default_factory=dict)


def _sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as handle:
    for block in iter(lambda: handle.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def save(experiment_dir: str, replicate: int, level: int, out_dir: str, data_dir: str = "data") -> str:
  """Saves level `level` of replicate `replicate` of a finished experiment as a ticket.

  The dataset is read (from `data_dir`) to record the model's input shape and normalisation.
  """
  config_path = os.path.join(experiment_dir, "config.json")
  if not os.path.exists(config_path):
    raise TicketError(f"{experiment_dir} is not an experiment directory (no config.json)")
  resolved = io.read_json(config_path)
  experiment_hash = resolved.pop("experiment_hash", "")
  config = ExperimentConfig.from_dict(resolved)
  layout = ExperimentLayout(os.path.dirname(os.path.abspath(experiment_dir)),
                            os.path.basename(os.path.abspath(experiment_dir)))
  files = BranchFiles(layout.branch_dir(replicate, level, "ticket"))
  if not files.is_finished():
    raise TicketError(f"replicate {replicate} level {level} of {experiment_dir} is not finished")
  mask = Mask.from_dict(io.read_arrays(files.mask))
  rewind = io.read_arrays(layout.rewind_file(replicate))
  arrays = {}
  for name in mask:
    arrays[f"mask/{name}"] = np.packbits(mask[name].reshape(-1))
    arrays[f"mask_shape/{name}"] = np.array(mask[name].shape, np.int64)
  for key, value in rewind.items():
    if key.startswith("w/"):
      name = key[2:]
      # Pruned entries never matter; storing them as zeros lets the archive compress them away.
      arrays[f"rewind/{name}"] = value * mask[name] if name in mask else value
  for key, value in io.read_arrays(files.final_weights).items():
    arrays[f"trained/{key}"] = value
  from lth_tf import data as data_lib  # pylint: disable=import-outside-toplevel
  splits = data_lib.load(config.dataset, data_dir)
  search = _search_compute(layout, replicate, level)
  os.makedirs(out_dir, exist_ok=True)
  arrays_path = os.path.join(out_dir, ARRAYS)
  io.write_arrays(arrays_path, arrays)
  io.write_json(os.path.join(out_dir, METADATA), {
      "format_version": FORMAT_VERSION,
      "config": config.to_dict(),
      "metrics": io.read_json(files.metrics),
      "provenance": {"experiment_hash": experiment_hash or config.experiment_hash(),
                     "code_version": __version__, "replicate": replicate, "level": level},
      "weights_remaining": mask.weights_remaining(),
      "input_shape": list(splits.input_shape),
      "num_classes": splits.num_classes,
      "normalization": {"mean": [float(v) for v in splits.mean],
                        "std": [float(v) for v in splits.std]},
      "sha256": _sha256(arrays_path),
      **({"search_compute": search} if search else {}),
  })
  return out_dir


def _search_compute(layout: ExperimentLayout, replicate: int, level: int) -> Dict[str, Any]:
  """What finding the ticket cost: its ticket branch at levels 0..level (controls excluded);
  empty when a level predates compute accounting."""
  from lth_tf import compute  # pylint: disable=import-outside-toplevel
  records = []
  for current in range(level + 1):
    files = BranchFiles(layout.branch_dir(replicate, current, "ticket"))
    metrics = io.read_json(files.metrics) if files.is_finished() else {}
    if metrics.get("train_flops") is None:
      return {}
    records.append(metrics)
  out = compute.total(records)
  out["levels_trained"] = out.pop("runs")
  return out


def read(path: str) -> Ticket:
  """Reads and verifies a ticket directory; any corruption or mismatch is a `TicketError`."""
  meta_path, arrays_path = os.path.join(path, METADATA), os.path.join(path, ARRAYS)
  for required in (meta_path, arrays_path):
    if not os.path.isfile(required):
      raise TicketError(f"{path} is not a ticket: {os.path.basename(required)} is missing")
  try:
    meta = io.read_json(meta_path)
  except ValueError as error:
    raise TicketError(f"{meta_path}: not valid JSON ({error})") from None
  if meta.get("format_version") != FORMAT_VERSION:
    raise TicketError(f"{path}: unsupported ticket format {meta.get('format_version')!r}")
  if _sha256(arrays_path) != meta.get("sha256"):
    raise TicketError(f"{path}: checksum mismatch: {ARRAYS} was modified or truncated")
  arrays = io.read_arrays(arrays_path)
  masks = {}
  for key, packed in arrays.items():
    if key.startswith("mask/"):
      name = key[len("mask/"):]
      shape = tuple(int(d) for d in arrays.get(f"mask_shape/{name}", ()))
      size = int(np.prod(shape)) if shape else -1
      if size < 0 or packed.dtype != np.uint8 or packed.size != (size + 7) // 8:
        raise TicketError(f"{path}: mask {name!r} does not match its recorded shape")
      masks[name] = np.unpackbits(packed)[:size].reshape(shape).astype(bool)
  try:
    config = ExperimentConfig.from_dict(meta["config"])
  except (ConfigError, KeyError, TypeError) as error:
    raise TicketError(f"{path}: invalid config in {METADATA} ({error})") from None
  rewind = {k[len("rewind/"):]: v for k, v in arrays.items() if k.startswith("rewind/")}
  trained = {k[len("trained/"):]: v for k, v in arrays.items() if k.startswith("trained/")}
  norm = meta.get("normalization", {})
  return Ticket(Mask.from_dict(masks), rewind, config, meta.get("metrics", {}),
                meta.get("provenance", {}), meta["sha256"], trained,
                tuple(meta.get("input_shape", ())), int(meta.get("num_classes", 0)),
                tuple(norm.get("mean", ())), tuple(norm.get("std", ())),
                dict(meta.get("search_compute", {})))


def apply(ticket: Ticket, model, trained: bool = False) -> None:
  """Loads the ticket into a wrapped model: its rewind (or trained) weights, then the frozen mask.

  Raises:
    TicketError: the ticket's weights or mask do not fit the model.
  """
  from lth_tf import pruning, training  # pylint: disable=import-outside-toplevel
  ticket.mask.check_fits(pruning.prunable_shapes(model))
  training.set_weights(model, ticket.trained_weights if trained else ticket.rewind_weights)
  pruning.set_mask(model, ticket.mask)


def build_model(ticket: Ticket, trained: bool = False):
  """The ticket's model (wrapped with frozen masks), its rewind or trained weights applied."""
  from lth_tf import models, pruning  # pylint: disable=import-outside-toplevel
  if not ticket.input_shape or not ticket.num_classes:
    raise TicketError("the ticket does not record its input shape and class count")
  model = pruning.wrap_model(models.build(ticket.config.model, ticket.input_shape,
                                          ticket.num_classes, seed=0))
  apply(ticket, model, trained=trained)
  return model


SHIPPED_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))), "saved_tickets")


def resolve(name_or_path: str) -> str:
  """A ticket directory from a path, or from the name of a ticket in `saved_tickets/`."""
  if os.path.isdir(name_or_path):
    return name_or_path
  shipped = os.path.join(SHIPPED_DIR, name_or_path)
  if os.path.isdir(shipped):
    return shipped
  raise TicketError(f"no ticket named or at {name_or_path!r}")


def shipped():
  """(name, ticket) for every ticket in `saved_tickets/`, sorted by name."""
  if not os.path.isdir(SHIPPED_DIR):
    return []
  return [(name, read(os.path.join(SHIPPED_DIR, name))) for name in sorted(os.listdir(SHIPPED_DIR))
          if os.path.isfile(os.path.join(SHIPPED_DIR, name, METADATA))]


def one_line(ticket: Ticket) -> str:
  return (f"{ticket.config.model.name} on {ticket.config.dataset.name}: "
          f"{100 * ticket.mask.weights_remaining():.2f}% weights remaining, "
          f"{100 * ticket.metrics.get('early_stop_test_accuracy', float('nan')):.2f}% test accuracy")


def describe(ticket: Ticket, where: str) -> str:
  """A multi-line description: what, how good, where from, per-layer density."""
  lines = [f"ticket {where}", f"  {one_line(ticket)}",
           f"  experiment {ticket.provenance.get('experiment_hash')} replicate "
           f"{ticket.provenance.get('replicate')} level {ticket.provenance.get('level')}, "
           f"code version {ticket.provenance.get('code_version')}",
           f"  rewind iteration {ticket.config.pruning.rewind_iteration}, "
           f"trained {ticket.config.training.iterations} iterations with "
           f"{ticket.config.training.optimizer} lr {ticket.config.training.learning_rate}"]
  for name, density in ticket.mask.layer_densities().items():
    lines.append(f"  {name:<30} {100 * density:6.2f}% of {ticket.mask[name].size:,}")
  return "\n".join(lines)


def load(name_or_path: str, trained: bool = False):
  """The model with the ticket applied: a shipped ticket's name or a ticket directory.

  Args:
    name_or_path: a ticket in `saved_tickets/` by name, or a ticket directory.
    trained: False gives the ticket itself (mask ⊙ rewind weights, ready to train); True gives
      the trained sparse network the ticket reached.

  Returns:
    A Keras model wrapped with frozen masks (strip with tfmot's `strip_pruning` to deploy).
  """
  return build_model(read(resolve(name_or_path)), trained=trained)
