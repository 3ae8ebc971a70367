"""The schemas of an experiment directory's records that more than one reader relies on."""
import os
from typing import Dict, Iterable, List, Tuple

from lth_tf import io
from lth_tf.config_codec import RETIRED_RUNTIME
from lth_tf.errors import UserError
from lth_tf.rundir.layout import BranchFiles, ExperimentLayout

# The keys of every row of `summary.json`, and of every finished branch's `metrics.json` (which
# has more): what a resume, a report and a saved ticket read.
SUMMARY_KEYS = ("replicate", "level", "branch", "weights_remaining", "early_stop_iteration",
                "early_stop_test_accuracy", "final_test_accuracy", "min_validation_loss")


# The key of a level-0 curve row (`curve.json`, `curve.csv`, TensorBoard, the checkpoint's rows)
# that holds the normalised Hamming distance between the mask the next prune would produce at
# that evaluation and at the previous one (`lth_tf.lottery.early_bird`); absent in the start
# row, in pruned levels and in runs from before 2026-12-02.
MASK_DISTANCE = "mask_distance"


# `data.json`: the data an experiment (or a tuning search) trains on, from its `Splits`.
def data_record(data) -> Dict:
  """What `data.json` records of the data an experiment trains on."""
  return {"dataset": data.name, "sha256": data.digest, "train": int(len(data.y_train)),
          "validation": int(len(data.y_val)), "test": int(len(data.y_test)),
          "num_classes": int(data.num_classes), "input_shape": list(data.input_shape),
          "modality": data.modality}


def check_data_record(path: str, data, directory: str,
                      flag: str = "root_dir") -> None:
  """Refuses to go on in `directory` if its recorded data (`path`, when it exists) is not `data`.

  Raises:
    UserError: other data than recorded (a file replaced since, another data_dir), or an
      unreadable record; one line that says how to start a new experiment.
  """
  recorded = _recorded(path, "data")
  if recorded is not NONE and (not isinstance(recorded, dict)
                               or recorded.get("sha256") != data.digest):
    raise UserError(f"{directory} was trained on other data than dataset {data.name} holds now "
                    f"(recorded in {path}: {_describe(recorded)}; now: "
                    f"{_describe(data_record(data))}); to start a new experiment on this data "
                    f"use another --{flag}, or remove {directory}")


def _describe(record) -> str:
  record = record if isinstance(record, dict) else {}
  sizes = "/".join(str(record.get(key)) for key in ("train", "validation", "test"))
  return f"sha256 {str(record.get('sha256'))[:12]}, {sizes} train/validation/test examples"


# `model.json`: the Keras the model is built in (`lth_tf.mechanism`: `tf_keras` or `keras3`): a
# registered model's `--framework`, or the Keras a user's model function returns. A directory
# without it (before 2026-12-07) holds a tf_keras model.
def model_record(framework: str, backend: str = "tensorflow") -> Dict:
  """What `model.json` records: the Keras, and the Keras 3 backend where it is not TensorFlow
  (`jax`: other numbers within float rounding, and its own optimizer-state layout)."""
  record = {"framework": framework}
  if backend != "tensorflow":
    record["backend"] = backend
  return record


def recorded_backend(path: str) -> str:
  """The backend `model.json` records; tensorflow where it records none."""
  recorded = _recorded(path, "model")
  if not isinstance(recorded, dict):
    return "tensorflow"
  return recorded.get("backend", "tensorflow")


def recorded_framework(path: str) -> str:
  """The framework `model.json` records; tf_keras for a directory from before the record."""
  recorded = _recorded(path, "model")
  if recorded is NONE:
    return "tf_keras"
  return recorded.get("framework", "") if isinstance(recorded, dict) else ""


def check_model_record(path: str, framework: str, directory: str,
                       backend: str = "tensorflow") -> None:
  """Refuses to go on in `directory` if it trained a model of another Keras than `framework`,
  or on another backend than `backend`.

  Raises:
    UserError: one line that says how to start a new experiment.
  """
  if not os.path.exists(path):
    return
  recorded = recorded_framework(path)
  if recorded != framework:
    raise UserError(f"{directory} trained a {recorded or 'unknown'} model (recorded in {path}); "
                    f"the model is now a {framework} model: an experiment trains one Keras's "
                    f"model; use another --root_dir, or remove {directory}")
  if recorded_backend(path) != backend:
    raise UserError(f"{directory} trained on Keras 3's {recorded_backend(path)} backend "
                    f"(recorded in {path}); it now runs on {backend}: an experiment trains on "
                    f"one backend; use another --root_dir, or remove {directory}")


def record_model(path: str, framework: str, directory: str, backend: str = "tensorflow") -> None:
  """Records the framework (and backend) in `path` unless a record exists (which must then be
  this one)."""
  check_model_record(path, framework, directory, backend)
  _write_once(path, model_record(framework, backend))


# `engine.json`: the runtime settings that choose how a step is computed. They are not part of the
# experiment hash (results agree within float rounding), but they round differently, so one
# experiment directory is trained with one of them.
def engine_record(runtime) -> Dict:
  """The engine of `runtime` (a `RuntimeConfig`), as `engine.json` records it."""
  fused = bool(runtime.fused_optimizer or runtime.dense_shards > 1)
  return {"fused_optimizer": fused, "dense_shards": int(runtime.dense_shards),
          "strategy": runtime.strategy,
          "logical_devices": int(runtime.logical_devices) if runtime.strategy != "default" else 0}


def _without_retired(record):
  """An engine record written before 2026-12-02 holds the retired settings
  (`config_codec.RETIRED_RUNTIME`); with them off it is the same engine as a record without them."""
  if not isinstance(record, dict) or any(record.get(key, off) != off
                                         for key, off in RETIRED_RUNTIME.items()):
    return record
  return {key: value for key, value in record.items() if key not in RETIRED_RUNTIME}


def _engine_flags(record) -> str:
  if not isinstance(record, dict):
    return "an unreadable engine record"
  flags = [f"--strategy={record.get('strategy')}"]
  if record.get("logical_devices"):
    flags.append(f"--logical_devices={record['logical_devices']}")
  if record.get("dense_shards", 1) > 1:
    flags.append(f"--dense_shards={record['dense_shards']}")
  elif record.get("fused_optimizer"):
    flags.append("--fused_optimizer")
  if record.get("batch_variants"):
    flags.append("--batch_variants")
    if record.get("variant_groups", 1) > 1:
      flags.append(f"--variant_groups={record['variant_groups']}")
  return " ".join(flags)


def check_engine_record(path: str, runtime, directory: str) -> None:
  """Refuses to go on in `directory` with another engine than the one recorded in `path`.

  Raises:
    UserError: one line naming both engines and the flags that continue the experiment.
  """
  recorded = _without_retired(_recorded(path, "engine"))
  now = engine_record(runtime)
  if recorded is not NONE and recorded != now:
    if isinstance(recorded, dict) and recorded.get("batch_variants"):
      raise UserError(f"{directory} was trained with {_engine_flags(recorded)}, which lth_tf has "
                      "retired: an experiment keeps one engine (they round differently), so "
                      "finish it with an lth_tf from before 2026-12-02, or use another "
                      "--root_dir")
    raise UserError(f"{directory} was trained with {_engine_flags(recorded)}, this run asks for "
                    f"{_engine_flags(now)}: an experiment keeps one engine (they round "
                    f"differently); rerun with {_engine_flags(recorded)}, or use another "
                    "--root_dir")


def record_engine(path: str, runtime, directory: str) -> None:
  """Records the engine in `path` unless a record exists (which must then be this engine).
  A directory from before the record gets the engine of the run that resumes it."""
  check_engine_record(path, runtime, directory)
  _write_once(path, engine_record(runtime))


def record_data(path: str, data, directory: str, flag: str = "root_dir") -> None:
  """Records the data in `path` if no record exists (a new directory, or one older than the
  record); a record written meanwhile by another process is checked instead."""
  check_data_record(path, data, directory, flag)
  _write_once(path, data_record(data))


# `optimizer_policy.json`: the optimizer state the branches of a level start from. Every branch
# starts from the one policy (`lth_tf.branches.BranchContext.optimizer_at`): `restore`, the state
# captured at k; `fresh`, a fresh optimizer. Before 2026-12-02, with `restore` and k > 0, only
# the ticket and random pruning restored the state at k and every other branch (re-init) started
# fresh; k = 0 and `fresh` started every branch alike under both rules.
SAME_START = "every branch"
RESTORED_BEFORE = ("ticket", "random_prune")  # the branches whose start the change kept


def optimizer_record(pruning) -> Dict:
  """What `optimizer_policy.json` records for `pruning` (a `PruningConfig`)."""
  return {"rewind_optimizer": pruning.rewind_optimizer, "applies_to": SAME_START}


def _earlier_rule(pruning, layout: ExperimentLayout, slots: Iterable[Tuple[int, int, str]]
                  ) -> Tuple[List[str], int]:
  """The finished branch directories of a directory without a record whose start the change
  moved (k > 0 under `restore`: every branch of a pruned level but the ticket and random
  pruning), and how many such slots there are in all."""
  if pruning.rewind_optimizer != "restore" or pruning.rewind_iteration == 0:
    return [], 0
  moved = [BranchFiles(layout.branch_dir(seed, level, branch)) for seed, level, branch in slots
           if level > 0 and branch not in RESTORED_BEFORE]
  return [files.directory for files in moved if files.is_finished()], len(moved)


def check_optimizer_record(path: str, pruning, layout: ExperimentLayout,
                           slots: Iterable[Tuple[int, int, str]]) -> None:
  """Refuses to resume `layout`'s directory into a mix of two optimizer rules.

  A directory with a record was trained under the one policy. One without (from before the
  record) is resumed when the change did not move any of its finished branches, or when every
  branch it moved is finished (nothing of them is trained again; the directory stays as it
  was); otherwise its finished and unfinished controls would start differently.

  Raises:
    UserError: one line naming the finished branches to delete to retrain them under one rule.
  """
  recorded = _recorded(path, "optimizer policy")
  if recorded is not NONE:
    if recorded != optimizer_record(pruning):
      raise UserError(f"{path} records another optimizer policy ({recorded}) than this run's "
                      f"({optimizer_record(pruning)}); use another --root_dir")
    return
  finished, moved = _earlier_rule(pruning, layout, slots)
  if finished and len(finished) < moved:
    shown = ", ".join(finished[:3]) + (f" and {len(finished) - 3} more" if len(finished) > 3 else "")
    raise UserError(
        f"{layout.directory} was trained before every branch of a level started from the same "
        f"optimizer state: {len(finished)} finished branch(es) ({shown}) started from a fresh "
        "optimizer while the ticket restored the state at k, and the branches still to train "
        "would restore it too; delete those directories and rerun to retrain them from the "
        "state at k, or keep the directory as it is (lth report reads it)")


def record_optimizer(path: str, pruning, layout: ExperimentLayout,
                     slots: Iterable[Tuple[int, int, str]]) -> None:
  """Records the policy in `path` unless a record exists (checked) or the directory is a
  finished one of the earlier rule (left as it is, without a record)."""
  slots = list(slots)
  check_optimizer_record(path, pruning, layout, slots)
  if not _earlier_rule(pruning, layout, slots)[0]:
    _write_once(path, optimizer_record(pruning))


NONE = object()  # what `_recorded` returns when there is no record


def _recorded(path: str, what: str):
  """The record in `path`, or `NONE` if there is none; an unreadable one is one line."""
  if not os.path.exists(path):
    return NONE
  try:
    return io.read_json(path)
  except UserError as error:
    raise UserError(f"{error}; remove it to record the {what} again") from None


def _write_once(path: str, record: Dict) -> None:
  """Writes a record that a checked directory lacks (new, or older than the record)."""
  if not os.path.exists(path):
    io.write_json(path, record)
