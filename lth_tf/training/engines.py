"""Which step engine a run uses: the fastest exact one for its model, strategy and machine,
unless the user chose one (`--engine=manual` or any engine setting given) or the experiment
directory records one.

Every engine keeps pruned weights exactly zero and gives the same results within float rounding
(`lth_tf.training.loop`, `sharded`); they differ in speed. `CANDIDATES` lists them fastest first
as measured (benchmarks/README.md, "The default engine"); the first whose rules hold is used:
  - `dense_shards`: every large fully connected kernel split in two, products and fused updates
    of the halves run on two cores, one thread per operation. For networks without
    convolutions, on two or more cores: a LeNet-300-100 step is too small for one matrix
    product to gain from two threads, so the second core is idle otherwise. Convolutions need
    their intra-op threads, so convolutional networks do not use it.
  - `fused`: TensorFlow's fused Adam / SGD-momentum kernels, one pass per weight.
  - `plain`: the one-op-at-a-time step (multi-replica strategies, loss scaling, RMSprop).
The rules are those `loop.check_engine` enforces, checked on the model built in a graph of its
own, so the choice is made before TensorFlow's thread pools are sized.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Callable, Dict, Mapping, Optional, Sequence, Tuple

from lth_tf import io, models, precision
from lth_tf.compat import tf
from lth_tf.config import ExperimentConfig, RuntimeConfig
from lth_tf.errors import ConfigError
from lth_tf.pruning import kinds
from lth_tf.training import loop


# The runtime settings that choose the engine; `--engine=auto` chooses only when none is given.
ENGINE_SETTINGS = ("fused_optimizer", "dense_shards", "intra_op_threads", "inter_op_threads")


@dataclasses.dataclass(frozen=True)
class Facts:
  """What the choice depends on: the machine's cores and the model's kinds of layers."""
  cores: int
  convolutional: bool


@dataclasses.dataclass(frozen=True)
class Candidate:
  name: str
  settings: Mapping[str, object]
  applies: Callable[[Facts], bool]
  describe: Callable[[RuntimeConfig, str], str]


def _shards(runtime: RuntimeConfig, optimizer: str) -> str:
  return f"{runtime.dense_shards} dense shards, fused {optimizer}, one thread per op"


CANDIDATES: Tuple[Candidate, ...] = (
    Candidate("dense_shards", {"dense_shards": 2},
              lambda facts: facts.cores >= 2 and not facts.convolutional, _shards),
    Candidate("fused", {"fused_optimizer": True}, lambda facts: True,
              lambda runtime, optimizer: f"fused {optimizer}"),
    Candidate("plain", {}, lambda facts: True,
              lambda runtime, optimizer: "one operation at a time"),
)


def given(runtime: RuntimeConfig) -> Tuple[str, ...]:
  """The engine settings that differ from their defaults."""
  default = RuntimeConfig()
  return tuple(name for name in ENGINE_SETTINGS
               if getattr(runtime, name) != getattr(default, name))


def cores() -> int:
  """The cores this process may run on."""
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:  # not on Linux
    return os.cpu_count() or 1


def describe(runtime: RuntimeConfig, optimizer: str) -> str:
  """The engine of `runtime` in words."""
  for candidate in CANDIDATES:
    if all(getattr(runtime, k) == v for k, v in candidate.settings.items()) and (
        candidate.settings or not (runtime.fused_optimizer or runtime.dense_shards > 1)):
      return candidate.describe(runtime, optimizer)
  return "as given"


def choose(config: ExperimentConfig, probe: Callable[[], Tuple[object, Dict[str, str]]],
           recorded: Optional[Dict] = None, machine: Optional[Facts] = None,
           check: Optional[Callable[[RuntimeConfig], None]] = None) -> Tuple[RuntimeConfig, str]:
  """The runtime a run uses and the one line that says so.

  Args:
    config: the validated experiment config.
    probe: builds the model (in a graph of its own, unwrapped: wrapping it there slowed the
      training that followed by a third) and returns it with whether it has convolutions;
      called only when a choice is made.
    recorded: the directory's engine record (`rundir.records.engine_record`), or None.
    machine: the facts to choose by (tests); by default this machine's cores and the model's.
    check: raises `ConfigError` when a runtime's engine cannot train the model
      (`loop.check_engine` on the probe); by default that check.
  """
  runtime = config.runtime
  optimizer = config.training.optimizer
  if runtime.engine == "manual" or given(runtime):
    why = "--engine=manual" if runtime.engine == "manual" else (
        "given by " + ", ".join(f"--{name}" for name in given(runtime)))
    return runtime, f"engine: {describe(runtime, optimizer)} ({why})"
  if recorded is not None:
    chosen = from_record(runtime, recorded)
    return chosen, (f"engine: {describe(chosen, optimizer)} (recorded in the experiment "
                    "directory: an experiment keeps one engine)")
  if runtime.strategy not in ("default", "one_device"):
    return runtime, (f"engine: one operation at a time (--strategy={runtime.strategy} runs "
                     "multi-replica steps)")
  model, convolutional = probe()
  facts = machine or Facts(cores(), convolutional)
  check = check or (lambda candidate: _check_on(model, config, candidate))
  for candidate in CANDIDATES:
    chosen = dataclasses.replace(runtime, **candidate.settings)
    if not candidate.applies(facts):
      continue
    try:
      check(chosen)
    except ConfigError:
      continue
    kind = "convolutional" if facts.convolutional else "fully connected"
    return chosen, (f"engine: {candidate.describe(chosen, optimizer)} (auto for a {kind} "
                    f"{config.model.name} on {facts.cores} core(s); --engine=manual: the engine "
                    "flags as given)")
  raise AssertionError("the plain engine always applies")


def from_record(runtime: RuntimeConfig, record: Dict) -> RuntimeConfig:
  """`runtime` with the engine an `engine.json` record names (strategy checked elsewhere)."""
  if not isinstance(record, dict):
    return runtime
  shards = int(record.get("dense_shards", 1) or 1)
  return dataclasses.replace(
      runtime, dense_shards=shards,
      fused_optimizer=bool(record.get("fused_optimizer")) and shards == 1)


def _check_on(model, config: ExperimentConfig, runtime: RuntimeConfig) -> None:
  loop.check_engine(model, config.training, runtime, tf.distribute.get_strategy())


def read_record(path: str, trained_before: bool) -> Optional[Dict]:
  """The directory's engine record; for a directory that trained before the record existed
  (`trained_before`), the engine of that time (one operation at a time, unless it was given);
  None for a new directory, and for one a run left before anything trained (killed between
  writing `config.json` and `engine.json`): the engine is chosen as for a new one."""
  if os.path.exists(path):
    try:
      return io.read_json(path)
    except Exception:  # pylint: disable=broad-except
      return None  # the record's own check reports it, with how to fix it
  if trained_before:
    return {"fused_optimizer": False, "dense_shards": 1}
  return None


def trained_before_record(config_file: str) -> bool:
  """Whether the experiment directory of `config_file` holds training from a run (a replicate
  directory): `engine.json` is written before any, so a directory with training and no record
  is from before the record (2026-12-02)."""
  directory = os.path.dirname(config_file)
  return os.path.exists(config_file) and any(
      name.startswith("replicate_") for name in os.listdir(directory))


def resolve(config: ExperimentConfig, input_shape: Sequence[int], num_classes: int,
            engine_file: str, config_file: str, log: Callable[[str], None]) -> ExperimentConfig:
  """`config` with the engine this run uses, said in one line (see `choose`). Keras 3 on JAX has
  one engine, the JAX trainer's (`lth_tf.training.jax_trainer`)."""
  from lth_tf.mechanism import keras3  # pylint: disable=import-outside-toplevel
  if keras3.on_jax():
    log("engine: JAX, one jitted function per chunk of iterations (Keras 3 on JAX)")
    return config
  def probe():
    with tf.Graph().as_default(), precision.policy(config.training.mixed_precision):
      model = models.build(config.model, tuple(input_shape), num_classes, seed=0)
      # Convolutions gain from TensorFlow's intra-op threads.
      return model, any(kinds.is_conv(layer) for layer in model.layers)
  runtime, line = choose(config, probe,
                         read_record(engine_file, trained_before_record(config_file)))
  log(line)
  return config.replace(runtime=runtime)
