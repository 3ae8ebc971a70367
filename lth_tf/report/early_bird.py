"""The early-bird part of a report: the mask-distance curve of each experiment's dense level
(recorded at every evaluation, `rundir.MASK_DISTANCE`) and, where the early-bird rule drew the
ticket, the training compute the draw saved against training the dense network its full length
(the dense level's FLOPs per iteration times the iterations it did not train)."""
from typing import Dict, List, Optional, Tuple

from lth_tf.rundir import MASK_DISTANCE

Curve = List[Tuple[int, float]]  # (iteration, distance) of every evaluation with a distance


def distances(experiment) -> Dict[int, Curve]:
  """Per replicate with a recorded dense level, its mask-distance curve (empty lists left out)."""
  out = {}
  for replicate in sorted({row["replicate"] for row in experiment.rows}):
    curve = experiment.branch_json(replicate, 0, "ticket", "curve_json") or []
    points = [(int(row["iteration"]), float(row[MASK_DISTANCE])) for row in curve
              if row.get(MASK_DISTANCE) is not None]
    if points:
      out[replicate] = points
  return out


def threshold(experiment) -> float:
  return float(experiment.config.pruning.early_bird_threshold)


def drawn(experiment) -> Dict[int, int]:
  """Per replicate whose dense training the early-bird rule ended, the iteration of the draw."""
  if threshold(experiment) <= 0:
    return {}
  end = experiment.config.training.iterations
  out = {}
  for replicate in distances(experiment):
    curve = experiment.branch_json(replicate, 0, "ticket", "curve_json")
    last = int(curve[-1]["iteration"])
    metrics = experiment.branch_json(replicate, 0, "ticket", "metrics")
    if metrics is not None and last < end:
      out[replicate] = last
  return out


def saved_flops(experiment) -> Tuple[float, float]:
  """(FLOPs the draws saved, FLOPs the dense levels spent), summed over the replicates."""
  end = experiment.config.training.iterations
  saved = spent = 0.0
  for replicate, iteration in drawn(experiment).items():
    metrics = experiment.branch_json(replicate, 0, "ticket", "metrics")
    trained = int(metrics.get("iterations_trained") or 0)
    flops = float(metrics.get("train_flops") or 0.0)
    if trained:
      saved += flops / trained * (end - iteration)
      spent += flops
  return saved, spent


def section(experiment) -> List[str]:
  """The report's lines on one experiment's mask distances; none when it recorded none."""
  curves = distances(experiment)
  if not curves:
    return []
  draws = drawn(experiment)
  end = experiment.config.training.iterations
  if not draws:
    last = ", ".join(f"{curve[-1][1]:.4f}" for curve in curves.values())
    return [f"Mask distance between consecutive evaluations of the dense level: last {last} "
            "(no early-bird draw: dense training ran its full length).", ""]
  window = experiment.config.pruning.early_bird_window
  where = (f"iteration {next(iter(draws.values()))} of {end}" if len(draws) == 1 else
           f"iterations {', '.join(str(i) for i in draws.values())} of {end} (replicates "
           f"{', '.join(str(r) for r in draws)})")
  saved, spent = saved_flops(experiment)
  total = _total_flops(experiment)
  share = f", {100 * saved / (total + saved):.1f}% of the experiment's" if total else ""
  return [f"Early-bird ticket (threshold {threshold(experiment):.4g}, {window} distances): drawn "
          f"at {where}; saved {saved:.3g} training FLOPs against full dense training "
          f"({100 * saved / (spent + saved):.1f}% of the dense level's{share}).", ""]


def _total_flops(experiment) -> Optional[float]:
  total = experiment.compute_totals()
  return None if total is None else float(total["train_flops"])
