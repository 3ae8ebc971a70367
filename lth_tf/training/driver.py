"""The one fit driver: the Python around a step engine's graph chunks, for every trainer.

`Trainer.fit` (`lth_tf.training.loop`) is a thin call to `fit`. The engine trains whole chunks
of iterations inside its graph functions; `fit` decides where the chunks end and what is
recorded:

- stops: every multiple of `eval_every` after the start iteration, every extra boundary
  strictly between the start and the end, and the end;
- curve rows: at the start iteration (unless the curve given for a resumed run
  already has it) and at every evaluation point (a multiple of `eval_every`, and the end), with
  `iteration`, `train_loss` (the mean of the step losses since the previous row, however many
  chunks they took; None in the start row), `learning_rate` and the engine's validation and test
  loss and accuracy;
- the divergence guard: a chunk in which a step's loss was NaN or Inf raises `TrainingDiverged`;
- after every chunk the fault point `train` (`io.fault_point`), and at every stop, after the
  evaluation there, `on_boundary(iteration, curves)`, which may end the training at an
  evaluation point by returning True (an early-bird draw); the progress bar moves at
  evaluations.

An engine is any object with:

  config                      its `TrainingConfig`: `iterations` (the end) and `eval_every`
  train_chunk(current, stop)  trains iterations [current, stop) and returns (loss, finite):
                              the sum of the step losses over the chunk, and whether every
                              step loss was finite
  evaluate()                  the validation and test metrics: a dict (`validation_loss`,
                              `validation_accuracy`, `test_loss`, `test_accuracy`)
  learning_rate_at(iteration) the learning rate of the schedule at `iteration`

Its weights, optimizer state and iteration counter must already be those at the start.
"""
import dataclasses
import sys
from typing import Callable, Dict, Iterable, List, Optional

from lth_tf import io
from lth_tf.errors import TrainingDiverged

Curve = List[Dict[str, float]]


@dataclasses.dataclass
class TrainResult:
  """What a finished training run reports. `curve` has one row per evaluation."""
  curve: Curve
  early_stop_iteration: int
  early_stop_test_accuracy: float
  early_stop_validation_accuracy: float
  min_validation_loss: float
  final_test_accuracy: float
  final_validation_accuracy: float
  iterations: int

  @classmethod
  def from_curve(cls, curve: Curve) -> "TrainResult":
    best = min(curve, key=lambda row: (row["validation_loss"], row["iteration"]))
    last = curve[-1]
    return cls(
        curve=curve,
        early_stop_iteration=int(best["iteration"]),
        early_stop_test_accuracy=best["test_accuracy"],
        early_stop_validation_accuracy=best["validation_accuracy"],
        min_validation_loss=best["validation_loss"],
        final_test_accuracy=last["test_accuracy"],
        final_validation_accuracy=last["validation_accuracy"],
        iterations=int(last["iteration"]),
    )

  def metrics(self) -> Dict[str, float]:
    out = dataclasses.asdict(self)
    out.pop("curve")
    return out


def stops(start: int, end: int, every: int, boundaries: Iterable[int] = ()) -> List[int]:
  """Where the chunks from `start` end: multiples of `every`, the boundaries inside, the end."""
  points = set(range(start - start % every + every, end, every))
  points |= {b for b in boundaries if start < b < end}
  points.add(end)
  return sorted(points)


def fit(engine, start_iteration: int, curve: Optional[Curve] = None,
        boundaries: Iterable[int] = (),
        on_boundary: Optional[Callable[[int, Curve], bool]] = None,
        description: str = "", progress: bool = False) -> TrainResult:
  """Trains `engine` from `start_iteration` to `engine.config.iterations`.

  Args:
    engine: the step engine (see the module docstring).
    start_iteration: the iteration the engine's current state belongs to.
    curve: the rows already recorded (when resuming a checkpoint); copied.
    boundaries: extra iterations at which to end a chunk and call `on_boundary`.
    on_boundary: called as `on_boundary(iteration, curve)` at every stop, after the evaluation
      there. Returning True at an evaluation point ends the training there: the result is that
      of the curve so far.
    description: printed before training when `progress` is on.
    progress: show a progress bar.

  Raises:
    TrainingDiverged: a training loss became NaN or Inf.
  """
  end, every = engine.config.iterations, engine.config.eval_every
  curve = list(curve or [])
  bar = _progress_bar_class()(end, verbose=1 if progress else 0,
                            stateful_metrics=["loss", "val_acc", "test_acc"], unit_name="iteration")
  if description and progress:
    print(description, flush=True)
  if not curve or curve[-1]["iteration"] < start_iteration:
    curve.append(_row(engine, start_iteration, None))
  # The training loss of a row is the mean over the iterations since the previous row.
  loss_sum, loss_steps = 0.0, 0
  current = start_iteration
  for stop in stops(start_iteration, end, every, boundaries):
    loss, finite = engine.train_chunk(current, stop)
    if not finite:
      raise TrainingDiverged(f"the training loss became NaN or Inf between iterations {current} "
                             f"and {stop}")
    io.fault_point("train")
    loss_sum += loss
    loss_steps += stop - current
    current = stop
    if stop % every == 0 or stop == end:
      curve.append(_row(engine, stop, loss_sum / loss_steps))
      loss_sum, loss_steps = 0.0, 0
      bar.update(stop, [(label, curve[-1][key]) for label, key in
                        (("loss", "train_loss"), ("val_acc", "validation_accuracy"),
                         ("test_acc", "test_accuracy"))])
    if on_boundary is not None and on_boundary(stop, curve):
      if stop % every and stop != end:
        raise ValueError(f"training can end early only at an evaluation; iteration {stop} is "
                         "none")
      break
  return TrainResult.from_curve(curve)


def _progress_bar_class():
  """Keras' progress bar: tf_keras's where it is imported, else Keras 3's (the same one)."""
  if "tf_keras" in sys.modules:
    return sys.modules["tf_keras"].utils.Progbar
  from keras import utils  # pylint: disable=import-outside-toplevel
  return utils.Progbar


def _row(engine, iteration: int, train_loss: Optional[float]) -> Dict[str, float]:
  """The curve row at `iteration`: the engine evaluated there."""
  row = {"iteration": int(iteration),
         "train_loss": None if train_loss is None else float(train_loss),
         "learning_rate": engine.learning_rate_at(iteration)}
  row.update(engine.evaluate())
  return row
