"""What a branch is: one record per branch, read by every command that trains or reports one.

A branch is a way to start a training from the state a level (or a transfer) has: the lottery
ticket itself, its controls, the dense network. Its record (`Branch`) carries everything the
commands need: the plan (mask, start weights, optimizer state, start iteration) built from a
`BranchContext`, which experiments train it and which setting enables it there, its place in
tables and figures, and its plot style. Every branch of a level starts from the same optimizer
policy (`BranchContext.optimizer_at`, checked by `plan_of`). `lth find` and `lth transfer` train
the branches their settings enable; `lth train` and `lth tune` train the ticket alone;
`lth report` orders and draws them. A new branch is one module in this package that registers its record; `lth find` then
trains it when it is named in `--branches`.

This package needs no TensorFlow (reports import it): a plan works on the context's arrays and
`Mask` methods only.
"""
import dataclasses
import hashlib
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import numpy as np

from lth_tf.errors import UserError
from lth_tf.registry import Registry

# How an experiment kind enables a branch (the values of `Branch.enabled_by`):
ALWAYS = "always"
LISTED = "pruning.branches"  # `lth find`: the branch is named in `--branches`

# The experiment kinds that train branches.
KINDS = ("find", "transfer")


def derive_seed(seed: int, *tags) -> int:
  """A seed for one purpose (e.g. the re-init of level 3), stable across runs and machines."""
  text = ":".join(str(part) for part in (seed,) + tags)
  return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little") & 0x7FFFFFFF


@dataclasses.dataclass(frozen=True)
class BranchContext:
  """What a level of `lth find` (or a replicate of `lth transfer`) plans its branches from.

  Attributes:
    seed: the replicate seed.
    level: the level (`lth find`: >= 1; `lth transfer`: 0).
    tag: what per-branch seeds are derived with besides the seed and the branch name: the level
      in `lth find`, "transfer" in `lth transfer` (`derive_seed(seed, name, tag)`).
    mask: the ticket's mask (pruned by the strategy, or the transferred one).
    rewind_weights: every weight at the rewind iteration k (θk), or the transferred ticket's.
    rewind_optimizer: the optimizer state captured at k under `--rewind_optimizer=restore`, or
      None (`fresh`, and `lth transfer`): what every branch starting at k gets; plans read it
      through `optimizer_at`, never choose their own.
    rewind_iteration: k, the iteration the rewound branches start from.
    initial_weights: θ0 of the replicate (the dense network's start).
    fresh_weights: builds newly initialised weights from a seed (same initialiser as θ0).
    target_ticket: `lth transfer --target_ticket`: a ticket found on the target; else None.
    source_weights: the trained weights `mask` was pruned from (`lth find`: the source level's
      ticket; `lth transfer`: the ticket's trained weights), e.g. for learning-rate rewinding.
    source_mask: the mask those weights were trained under (every surviving weight of `mask`
      is in it), e.g. for branches that choose among the same survivors.
    scores: `(among=None) -> scores by weight name` (higher kept): the pruning strategy's
      ranking of the weights `mask` was cut from, computed when called, on the weights of
      `among` (by default `source_mask`; a strategy that scores in steps re-scores on each
      step's mask); None where the strategy ranks by no score (a branch that needs it says so
      in `Branch.needs`).
    score_steps: the score-and-prune steps the strategy took from `source_mask` to `mask`
      (SynFlow: 100 by default; 1 for a single scoring pass).
  """
  seed: int
  level: int
  tag: Any
  mask: Any
  rewind_weights: Dict[str, np.ndarray]
  rewind_optimizer: Optional[Dict[str, np.ndarray]]
  rewind_iteration: int
  initial_weights: Dict[str, np.ndarray]
  fresh_weights: Callable[[int], Dict[str, np.ndarray]]
  target_ticket: Optional[Any] = None
  source_weights: Optional[Dict[str, np.ndarray]] = None
  source_mask: Optional[Any] = None
  scores: Optional[Callable[..., Mapping[str, np.ndarray]]] = None
  score_steps: int = 1

  def seed_for(self, name: str) -> int:
    """The seed of branch `name`'s own random draws at this level."""
    return derive_seed(self.seed, name, self.tag)

  def optimizer_at(self, iteration: int) -> Optional[Dict[str, np.ndarray]]:
    """The optimizer state a branch starting at `iteration` starts from: the one policy of the
    level, the same for every branch whatever its weights. `restore`: the state captured at k
    for a branch starting at k; `fresh` (no state captured): None, a fresh optimizer. A
    branch starting at iteration 0 gets a fresh optimizer under both (the state at 0 is the
    fresh one, which is why k = 0 makes the two policies coincide).

    Raises:
      ValueError: under `restore`, a start iteration other than 0 and k (no state is captured
        there).
    """
    if self.rewind_optimizer is None or iteration == 0:
      return None
    if iteration != self.rewind_iteration:
      raise ValueError(f"no optimizer state is captured at iteration {iteration} (only at the "
                       f"rewind iteration {self.rewind_iteration})")
    return self.rewind_optimizer


@dataclasses.dataclass(frozen=True)
class BranchPlan:
  """How one branch starts: its mask, weights (masked when loaded), optimizer state (None: a
  fresh optimizer; always `context.optimizer_at(start_iteration)`, see `plan_of`) and the
  iteration its training starts from."""
  mask: Any
  start_weights: Dict[str, np.ndarray]
  optimizer_state: Optional[Dict[str, np.ndarray]]
  start_iteration: int


@dataclasses.dataclass(frozen=True)
class Branch:
  """Everything a branch is.

  Attributes:
    name: the directory name (`level_<L>/<name>/`) and the name in tables and `--branches`.
    plan: `BranchContext -> BranchPlan`.
    summary: one line for help and reports.
    enabled_by: per experiment kind (`find`, `transfer`), what trains the branch there:
      `ALWAYS`, `LISTED` (named in `--branches`), or a boolean setting by its path (the
      config field `pruning.reinit` of `lth find`, the transfer field `target_ticket`). Kinds
      not listed never train it.
    order: its position in training order, tables and figures (the ticket first).
    marker, linestyle: its matplotlib style in figures.
    control: a comparison for the ticket (`lth train` and `lth tune` leave controls out).
    label: its short name in column headings ("Δ <label>"); the name if empty.
    needs: what its plan reads that not every experiment has: `scores` (the strategy's
      ranking, `BranchContext.scores`); an experiment refuses it before training when it
      cannot give that.
  """
  name: str
  plan: Callable[[BranchContext], BranchPlan]
  summary: str
  enabled_by: Mapping[str, str]
  order: int
  marker: str
  linestyle: str
  control: bool = True
  label: str = ""
  needs: Tuple[str, ...] = ()

  @property
  def heading(self) -> str:
    return self.label or self.name

  def is_enabled(self, kind: str, settings) -> bool:
    """Whether an experiment of `kind` with `settings` (its config, or the transfer settings)
    trains this branch."""
    how = self.enabled_by.get(kind)
    if how is None:
      return False
    if how == ALWAYS:
      return True
    if how == LISTED:
      return self.name in settings.pruning.branches
    value = settings
    for part in how.split("."):
      value = getattr(value, part)
    return bool(value)


BRANCHES: Registry[Branch] = Registry("branch")

# Branch names that are no longer trained, and what to use instead. Directories an older run
# trained under them are still read and reported (as branches of no registered record).
RETIRED = {
    "shuffle": "retired on 2026-12-07: it was the random_prune control under another name (a "
               "random mask with the ticket's per-layer counts, from θk, under the level's "
               "optimizer policy: Frankle et al. 2021's layerwise shuffle); give --random_prune",
}


def register(branch: Branch) -> Branch:
  BRANCHES.add(branch.name, branch)
  return branch


def plan_of(name: str, context: BranchContext) -> BranchPlan:
  """Branch `name`'s plan at `context`, checked to start from the level's one optimizer policy
  (`BranchContext.optimizer_at` of its start iteration), so that a branch and the ticket differ
  only where the branch means to (its mask, weights or start iteration), never in optimizer
  state.

  Raises:
    UserError: a plan (a plug-in's) that chose another optimizer state.
  """
  plan = BRANCHES.get(name).plan(context)
  try:
    expected = context.optimizer_at(plan.start_iteration)
  except ValueError as error:
    raise UserError(f"branch {name!r} starts at iteration {plan.start_iteration}: {error}") from None
  if plan.optimizer_state is not expected:
    wanted = "a fresh optimizer (None)" if expected is None else "context.optimizer_at(...)"
    raise UserError(f"branch {name!r} plans its own optimizer state; every branch of a level "
                    f"starts from the level's policy: {wanted}")
  return plan


def ordered(names) -> Tuple[str, ...]:
  """`names` in branch order; names of no registered branch last, alphabetically."""
  known = {name: BRANCHES.get(name).order for name in names if name in BRANCHES}
  return tuple(sorted(names, key=lambda name: (name not in known, known.get(name, 0), name)))


def enabled(kind: str, settings) -> Tuple[str, ...]:
  """The branches an experiment of `kind` with `settings` trains, in order."""
  return ordered([name for name in BRANCHES if BRANCHES.get(name).is_enabled(kind, settings)])


def listable(kind: str = "find") -> Tuple[str, ...]:
  """The branches `--branches` may name for `kind`."""
  return ordered([name for name in BRANCHES if BRANCHES.get(name).enabled_by.get(kind) == LISTED])


def trained_by(kind: str) -> Tuple[str, ...]:
  """Every branch an experiment of `kind` can train, in order."""
  return ordered([name for name in BRANCHES if kind in BRANCHES.get(name).enabled_by])


def switches(kind: str = "find") -> Tuple[str, ...]:
  """The boolean settings that enable branches of `kind` (e.g. `pruning.reinit`)."""
  return tuple(sorted({BRANCHES.get(name).enabled_by[kind] for name in BRANCHES
                       if BRANCHES.get(name).enabled_by.get(kind) not in (None, ALWAYS, LISTED)}))


def ticket_only(config):
  """`config` (an `ExperimentConfig`) with every control of `lth find` switched off: what
  `lth train` and `lth tune` train."""
  for path in switches("find"):
    part, field = path.split(".")
    config = config.replace(**{part: dataclasses.replace(getattr(config, part), **{field: False})})
  part, field = LISTED.split(".")
  return config.replace(**{part: dataclasses.replace(getattr(config, part), **{field: ()})})


def style(name: str) -> Tuple[str, str]:
  """(marker, linestyle) of a branch; a plain style for names no branch has."""
  if name in BRANCHES:
    branch = BRANCHES.get(name)
    return branch.marker, branch.linestyle
  return "x", "-"
