"""The saved-ticket format: data only (npz + JSON), checksummed, never unpickled.

A ticket is a directory with two files:
- `ticket.npz`: `mask/<weight>` bit-packed keep-bits (`numpy.packbits`) with `mask_shape/<weight>`,
  `rewind/<weight>` the weights the ticket starts from (θk, unmasked) and `trained/<weight>` the
  weights it reached when trained, for every weight of the model, batch-norm statistics included;
  for a ticket of a `py:` dataset, `export/...`, the examples export reads
  (`lth_tf.data.export_sample`), so that exporting it runs no dataset code.
- `ticket.json`: the experiment config, the level's metrics, provenance (experiment hash, code
  version, replicate, level), the model's input shape, class count and input normalisation, the
  SHA-256 of `ticket.npz` (`sha256`, what `--ticket_sha256` pins) and `metadata_sha256`, the
  SHA-256 of the rest of `ticket.json` in canonical form (`metadata_digest`).

Reading verifies both digests, so a truncated or edited file of either kind is refused. The
digests detect corruption and edits, not a forger: whoever rewrites a file can recompute them.
A `ticket.json` without `metadata_sha256` (saved before it existed) is refused; `sign` adds it
to such a ticket whose `ticket.npz` still matches its checksum (`lth tickets sign PATH`).
"""
import dataclasses
import hashlib
import json
import math
import os
from typing import Any, Dict, Optional, Tuple

import numpy as np

from lth_tf import __version__, compute, io, models, pruning, training, user_code
from lth_tf import data as data_lib
from lth_tf.data import export_sample
from lth_tf.config import ExperimentConfig
from lth_tf.data.modality import NAMES as MODALITY_NAMES
from lth_tf.errors import ConfigError, CorruptFileError, TicketError
from lth_tf.rundir import BranchFiles, ExperimentLayout, finished, recorded_framework, states
from lth_tf.rundir.layout import CONFIG_FILE, SUMMARY_FILE
from lth_tf.pruning import Mask

FORMAT_VERSION = 1
ARRAYS, METADATA = "ticket.npz", "ticket.json"
METADATA_DIGEST = "metadata_sha256"


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
  modality: str = "image"
  export_data: Optional[export_sample.ExportData] = None
  # The Keras its model was built in (`tf_keras`, or `keras3`); tf_keras for a ticket from
  # before the record (2026-12-07).
  framework: str = "tf_keras"


def _sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as handle:
    for block in iter(lambda: handle.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def save(experiment_dir: str, replicate: int, level: int, out_dir: str, data_dir: str = "data",
         carry_examples: int = export_sample.CARRIED_TEST_EXAMPLES) -> str:
  """Saves level `level` of replicate `replicate` of a finished experiment as a ticket.

  The dataset is read (from `data_dir`) to record the model's input shape and normalisation.
  A ticket of a `py:` dataset (user code) carries the examples export reads, the first
  `carry_examples` test examples (0: none), so that exporting it runs no dataset code.
  """
  if not isinstance(carry_examples, int) or isinstance(carry_examples, bool) or carry_examples < 0:
    raise TicketError(f"carry_examples must be a count >= 0; got {carry_examples!r}")
  layout = ExperimentLayout.from_directory(experiment_dir)
  if not os.path.isfile(layout.config_file):
    raise TicketError(f"{experiment_dir} is not an experiment directory (no config.json)")
  _check_out_dir(out_dir, experiment_dir)
  recorded = finished.read_config(experiment_dir, runs_code=True)
  config, experiment_hash = recorded.config, recorded.experiment_hash
  files = BranchFiles(layout.branch_dir(replicate, level, "ticket"))
  if not files.is_finished():
    raise TicketError(f"replicate {replicate} level {level} of {experiment_dir} is not finished")
  mask = Mask.from_dict(io.read_arrays(files.mask))
  rewind = states.read(io, layout.rewind_file(replicate))
  splits = data_lib.load(config.dataset, data_dir)
  carried = None
  if carry_examples and user_code.named_code(config, ("dataset",)):
    carried = export_sample.from_splits(splits, "", carry_examples)
  return write(out_dir, mask, rewind.weights, io.read_arrays(files.final_weights), config,
               finished.branch_metrics(files.metrics),
               {"experiment_hash": experiment_hash or config.experiment_hash(),
                "code_version": __version__, "replicate": replicate, "level": level},
               splits.input_shape, splits.num_classes, splits.mean, splits.std,
               _search_compute(layout, replicate, level), modality=splits.modality,
               export_data=carried, framework=recorded_framework(layout.model_file))


def write(out_dir: str, mask: Mask, rewind_weights: Dict[str, np.ndarray],
          trained_weights: Dict[str, np.ndarray], config: ExperimentConfig,
          metrics: Dict[str, Any], provenance: Dict[str, Any], input_shape, num_classes: int,
          mean, std, search_compute: Optional[Dict[str, Any]] = None,
          modality: str = "image",
          export_data: Optional[export_sample.ExportData] = None,
          framework: str = "tf_keras") -> str:
  """Writes a ticket (both files, checksummed) into `out_dir`, a new or empty directory or an
  existing ticket (replaced whole).

  Args:
    mask: the ticket's mask.
    rewind_weights, trained_weights: every weight of the model by `layer/variable` name, at the
      rewind point θk (unmasked or masked) and after training the ticket.
    config: the experiment that found it (its model must build the model these weights fit).
    metrics: the trained ticket's metrics (`early_stop_test_accuracy` and friends).
    provenance: where it came from.
    input_shape, num_classes: the model's input shape and class count.
    mean, std: the input normalisation per channel, in the [0, 1] pixel scale (per feature
      for tabular data and sequences; 0 and 1 for token ids).
    search_compute: what finding it cost, if known.
    modality: what the inputs are (`lth_tf.data.modality`); export puts its preprocessing
      inside the model.
    export_data: the examples export reads, carried by the ticket (`data.export_sample`).
    framework: the Keras the model was built in (`lth_tf.mechanism`: `tf_keras`, `keras3`).
  """
  _check_out_dir(out_dir, None)
  arrays = {}
  for name in mask:
    arrays[f"mask/{name}"] = np.packbits(mask[name].reshape(-1))
    arrays[f"mask_shape/{name}"] = np.array(mask[name].shape, np.int64)
  for name, value in rewind_weights.items():
    # Pruned entries never matter; storing them as zeros lets the archive compress them away.
    arrays[f"rewind/{name}"] = value * mask[name] if name in mask else value
  for name, value in trained_weights.items():
    arrays[f"trained/{name}"] = value
  if export_data is not None:
    arrays.update(export_data.arrays())
  meta = {
      "format_version": FORMAT_VERSION,
      "config": config.to_dict(),
      "metrics": dict(metrics),
      "provenance": dict(provenance),
      "weights_remaining": mask.weights_remaining(),
      "input_shape": [int(d) for d in input_shape],
      "num_classes": int(num_classes),
      "framework": str(framework),
      "normalization": {"mean": [float(v) for v in mean], "std": [float(v) for v in std],
                        "modality": str(modality)},
      **({"search_compute": search_compute} if search_compute else {}),
  }
  _write_atomically(out_dir, arrays, meta)
  return out_dir


def metadata_digest(meta: Dict[str, Any]) -> str:
  """SHA-256 of `ticket.json`'s content without `metadata_sha256`, as canonical JSON (sorted
  keys, no spaces, ASCII); JSON floats read back exactly, so reading reproduces it."""
  content = {key: value for key, value in meta.items() if key != METADATA_DIGEST}
  text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
  return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _check_out_dir(out_dir: str, experiment_dir: Optional[str]) -> None:
  """Refuses an `--out` that is a file, inside the experiment, or a directory holding anything
  but a ticket's two files (a ticket there is replaced)."""
  out = os.path.abspath(out_dir)
  experiment = os.path.abspath(experiment_dir) if experiment_dir else None
  if experiment and os.path.commonpath([out, experiment]) == experiment:
    raise TicketError(f"--out {out_dir} is inside the experiment directory {experiment_dir}; "
                      "choose a directory outside it")
  if os.path.exists(out) and not os.path.isdir(out):
    raise TicketError(f"--out {out_dir} exists and is not a directory")
  held = set(os.listdir(out)) if os.path.isdir(out) else set()
  if held & {CONFIG_FILE, SUMMARY_FILE}:
    raise TicketError(f"--out {out_dir} is an experiment directory; choose a new directory")
  if held - {ARRAYS, METADATA}:
    raise TicketError(f"--out {out_dir} exists and holds files other than a ticket "
                      f"({', '.join(sorted(held - {ARRAYS, METADATA})[:3])}); choose a new or "
                      "empty directory")


def _write_atomically(out_dir: str, arrays: Dict[str, np.ndarray], meta: Dict[str, Any]) -> None:
  """Writes both files into a staging directory beside `out_dir`, then swaps it in whole
  (`io.published_directory`): a failed save leaves `out_dir` as it was (absent, empty, or the
  previous ticket); a killed one leaves what the next save to `out_dir` finishes first."""
  with io.published_directory(out_dir, fault_label="tickets:swap") as staging:
    arrays_path = os.path.join(staging, ARRAYS)
    io.write_arrays(arrays_path, arrays)
    meta = dict(meta, sha256=_sha256(arrays_path))
    meta[METADATA_DIGEST] = metadata_digest(meta)
    io.write_json(os.path.join(staging, METADATA), meta)


def _search_compute(layout: ExperimentLayout, replicate: int, level: int) -> Dict[str, Any]:
  """What finding the ticket cost: its ticket branch at levels 0..level (controls excluded);
  empty when a level predates compute accounting."""
  records = []
  for current in range(level + 1):
    files = BranchFiles(layout.branch_dir(replicate, current, "ticket"))
    metrics = finished.branch_metrics(files.metrics) if files.is_finished() else {}
    if metrics.get("train_flops") is None:
      return {}
    records.append(metrics)
  out = compute.total(records)
  out["levels_trained"] = out.pop("runs")
  return out


def read(path: str, consent: bool = True) -> Ticket:
  """Reads and verifies a ticket directory; any corruption or mismatch is a `TicketError`.

  With `consent` (what every command that builds the ticket's model or reads its data asks),
  a ticket that names user code the user did not name (`user_code.check_consent`) is refused
  before anything is imported; `lth tickets show` reads it without, and says what it names."""
  meta_path, arrays_path = os.path.join(path, METADATA), os.path.join(path, ARRAYS)
  for required in (meta_path, arrays_path):
    if os.path.islink(required):
      raise TicketError(f"{path}: {os.path.basename(required)} is a symbolic link; a ticket's "
                        "files must be its own")
    if not os.path.isfile(required):
      raise TicketError(f"{path} is not a ticket: {os.path.basename(required)} is missing")
  try:
    meta = io.read_json(meta_path)
  except CorruptFileError as error:
    raise TicketError(str(error)) from None
  if not isinstance(meta, dict):
    raise TicketError(f"{meta_path}: not a ticket's metadata (a JSON object)")
  if meta.get("format_version") != FORMAT_VERSION:
    raise TicketError(f"{path}: unsupported ticket format {meta.get('format_version')!r}")
  if METADATA_DIGEST not in meta:
    raise TicketError(f"{path}: {METADATA} has no {METADATA_DIGEST} (saved by an older version): "
                      "re-save it with `lth tickets save`, or, if you trust the file, add the "
                      "checksum with `lth tickets sign PATH`")
  if metadata_digest(meta) != meta[METADATA_DIGEST]:
    raise TicketError(f"{path}: checksum mismatch: {METADATA} was modified or corrupted")
  if _sha256(arrays_path) != meta.get("sha256"):
    raise TicketError(f"{path}: checksum mismatch: {ARRAYS} was modified or truncated")
  _check_sizes(path, meta)
  arrays = io.read_arrays(arrays_path)
  masks = {}
  for key, packed in arrays.items():
    if key.startswith("mask/"):
      name = key[len("mask/"):]
      shape = _declared_shape(path, f"mask {name!r}", arrays.get(f"mask_shape/{name}", ()))
      size = math.prod(shape)
      if packed.dtype != np.uint8 or packed.size != (size + 7) // 8:
        raise TicketError(f"{path}: mask {name!r} does not match its recorded shape")
      masks[name] = np.unpackbits(packed)[:size].reshape(shape).astype(bool)
  try:
    config = ExperimentConfig.from_dict(meta["config"])
  except (ConfigError, AttributeError, KeyError, TypeError, ValueError) as error:
    raise TicketError(f"{path}: invalid config in {METADATA} ({error})") from None
  if consent:
    user_code.check_consent(config, f"the ticket {path}")
  rewind = {k[len("rewind/"):]: v for k, v in arrays.items() if k.startswith("rewind/")}
  trained = {k[len("trained/"):]: v for k, v in arrays.items() if k.startswith("trained/")}
  norm = meta.get("normalization", {})
  kind = norm.get("modality", "image") if isinstance(norm, dict) else "image"
  if kind not in MODALITY_NAMES:
    raise TicketError(f"{path}: unknown input modality {kind!r} in {METADATA} "
                      f"(one of {', '.join(MODALITY_NAMES)})")
  try:
    input_shape = tuple(int(d) for d in meta.get("input_shape", ()))
    num_classes = int(meta.get("num_classes", 0))
    carried = export_sample.from_arrays(arrays, input_shape, num_classes, "")
    if carried is not None:
      carried = dataclasses.replace(carried, source=f"the {len(carried.test_labels):,} test "
                                    "examples the ticket carries")
  except (TypeError, ValueError) as error:
    raise TicketError(f"{path}: {error}") from None
  try:
    return Ticket(Mask.from_dict(masks), rewind, config, dict(meta.get("metrics", {})),
                  dict(meta.get("provenance", {})), meta["sha256"], trained,
                  input_shape, num_classes, tuple(float(v) for v in norm.get("mean", ())),
                  tuple(float(v) for v in norm.get("std", ())),
                  dict(meta.get("search_compute", {})), kind, carried,
                  str(meta.get("framework", "tf_keras")))
  except (AttributeError, TypeError, ValueError) as error:
    raise TicketError(f"{path}: malformed {METADATA} ({error})") from None


# What a ticket may declare before anything is allocated from it: a weight of at most 2^34
# entries, of rank 1 to 5; an input of at most 2^28 values, of rank 1 to 3; 2 to 2^24 classes.
MAX_WEIGHT_SIZE, MAX_INPUT_SIZE, MAX_CLASSES = 2 ** 34, 2 ** 28, 2 ** 24


def _declared_shape(path: str, what: str, values, rank=(1, 5), limit=MAX_WEIGHT_SIZE):
  """A shape a ticket declares, checked with Python integers: positive dimensions, a rank and
  a size in range; a one-line `TicketError` otherwise."""
  try:
    shape = tuple(int(d) for d in np.asarray(values).reshape(-1).tolist())
  except (TypeError, ValueError):
    shape = ()
  if (not rank[0] <= len(shape) <= rank[1] or min(shape) < 1 or math.prod(shape) > limit):
    raise TicketError(f"{path}: {what} declares shape {list(shape) or values!r}: not a shape "
                      f"of at most {limit} positive entries")
  return shape


def _check_sizes(path: str, meta: Dict[str, Any]) -> None:
  """The model's input shape and class count in `ticket.json`, before a model is built."""
  shape = meta.get("input_shape", ())
  if shape:
    if not isinstance(shape, list) or not all(isinstance(d, int) for d in shape):
      raise TicketError(f"{path}: the input shape {shape!r} is not a list of integers")
    _declared_shape(path, "the input shape", shape, (1, 3), MAX_INPUT_SIZE)
  classes = meta.get("num_classes", 0)
  if classes and (not isinstance(classes, int) or not 2 <= classes <= MAX_CLASSES):
    raise TicketError(f"{path}: the class count {classes!r} is not an integer in [2, "
                      f"{MAX_CLASSES}]")


def sign(path: str) -> str:
  """Adds `metadata_sha256` to a ticket saved before it existed and returns the digest.

  Only for a ticket you trust: it vouches for `ticket.json` as it is now. Refused when the
  ticket already carries the digest or its `ticket.npz` does not match its checksum.
  """
  meta_path, arrays_path = os.path.join(path, METADATA), os.path.join(path, ARRAYS)
  if not (os.path.isfile(meta_path) and os.path.isfile(arrays_path)):
    raise TicketError(f"{path} is not a ticket ({METADATA} and {ARRAYS} are needed)")
  try:
    meta = io.read_json(meta_path)
  except CorruptFileError as error:
    raise TicketError(str(error)) from None
  if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
    raise TicketError(f"{meta_path}: not a ticket's metadata (format {FORMAT_VERSION})")
  if METADATA_DIGEST in meta:
    raise TicketError(f"{path} already carries {METADATA_DIGEST}; a ticket is signed once")
  if _sha256(arrays_path) != meta.get("sha256"):
    raise TicketError(f"{path}: checksum mismatch: {ARRAYS} was modified or truncated")
  meta[METADATA_DIGEST] = metadata_digest(meta)
  io.write_json(meta_path, meta)
  read(path)
  return meta[METADATA_DIGEST]


def apply(ticket: Ticket, model, trained: bool = False) -> None:
  """Loads the ticket into a wrapped model: its rewind (or trained) weights, then the frozen mask.

  Raises:
    TicketError: the ticket's weights or mask do not fit the model.
  """
  ticket.mask.check_fits(pruning.prunable_shapes(model))
  training.set_weights(model, ticket.trained_weights if trained else ticket.rewind_weights)
  pruning.set_mask(model, ticket.mask)


def build_model(ticket: Ticket, trained: bool = False, framework: Optional[str] = None):
  """The ticket's model (wrapped with frozen masks), its rewind or trained weights applied;
  `framework` builds a registered model in another Keras than the ticket's (`tf_keras`,
  `keras3`: the weights carry the same names in both)."""
  if not ticket.input_shape or not ticket.num_classes:
    raise TicketError("the ticket does not record its input shape and class count")
  config = ticket.config.model
  if framework is not None:
    config = dataclasses.replace(config, framework=framework)
  model = pruning.wrap_model(models.build(config, ticket.input_shape, ticket.num_classes, seed=0))
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
           f"{ticket.config.training.optimizer} lr {ticket.config.training.learning_rate}",
           f"  inputs: {ticket.modality} of shape {tuple(ticket.input_shape)}",
           f"  model: {ticket.config.model.name} in {ticket.framework}"]
  code = user_code.named_code(ticket.config)
  lines.append(f"  runs code: {', '.join(code)} (only with --trust_code={','.join(code)})"
               if code else "  runs code: none (a registered model and dataset)")
  lines.append(f"  export reads: {export_source(ticket)}")
  for name, density in ticket.mask.layer_densities().items():
    lines.append(f"  {name:<30} {100 * density:6.2f}% of {ticket.mask[name].size:,}")
  return "\n".join(lines)


def reads_carried_examples(ticket: Ticket) -> bool:
  """Whether `lth export` reads the examples the ticket carries: its dataset is user code the
  user did not name, and the ticket carries them."""
  code = user_code.named_code(ticket.config, ("dataset",))
  return ticket.export_data is not None and any(not user_code.is_trusted(name) for name in code)


def export_source(ticket: Ticket) -> str:
  """Where `lth export` reads the examples for int8 calibration and the parity check."""
  dataset = ticket.config.dataset.name
  if not user_code.named_code(ticket.config, ("dataset",)):
    return f"the dataset {dataset} (from --data_dir; no code of the ticket's)"
  if user_code.is_trusted(dataset):
    return f"the dataset {dataset} (your code, named with --trust_code)"
  if reads_carried_examples(ticket):
    return (f"{ticket.export_data.source} and {len(ticket.export_data.calibration)} training "
            f"examples for int8 calibration (its dataset {dataset} is not run)")
  return (f"the dataset {dataset}: your code, which runs only with --trust_code={dataset} "
          "(the ticket carries no examples)")


def load(name_or_path: str, trained: bool = False, trust: Tuple[str, ...] = ()):
  """The model with the ticket applied: a shipped ticket's name or a ticket directory.

  Args:
    name_or_path: a ticket in `saved_tickets/` by name, or a ticket directory.
    trained: False gives the ticket itself (mask ⊙ rewind weights, ready to train); True gives
      the trained sparse network the ticket reached.
    trust: the user code the ticket may run (its model function as the ticket names it,
      `package.module:function`): a ticket naming code you did not name is refused.

  Returns:
    A Keras model wrapped with frozen masks (strip with tfmot's `strip_pruning` to deploy).
  """
  user_code.trust(trust)
  return build_model(read(resolve(name_or_path)), trained=trained)
