"""An experiment directory while it trains: its lock, its files' store, config and summary.

`lth find`, `lth train` and `lth transfer` share it: each names its branches' slots and the
config it records; this module takes the lock, cleans what a killed run left, turns Ctrl-C
and SIGTERM into a one-line `Interrupted` that says where the run was, and writes the summary
after every branch.
"""
from __future__ import annotations

import contextlib
import os
import signal
from typing import Callable, Dict, Iterable, List, Optional, Tuple

from lth_tf import distribute, io
from lth_tf.config import ExperimentConfig
from lth_tf.errors import Interrupted, UserError
from lth_tf.lottery import results
from lth_tf.lottery.store import ArtifactStore
from lth_tf.rundir import BranchFiles, ExperimentLayout, finished

Slot = Tuple[int, int, str]  # (seed, level, branch)


class RunDirectory:
  """One experiment directory (`layout`), written by the chief only (`writes`); `store` replaces
  its files with a remote task's view of them (`lottery.store.MemoryStore`).

  Attributes:
    store: the files (on the chief) or their in-memory copies (other workers).
    where: what the run is doing now ("during replicate 0 level 2 branch reinit"), for the
      message of an interrupted run; set by whoever trains.
    seeds: every replicate the directory holds, once `write_config` has run: the seeds an
      earlier run recorded and this run's (a rerun with other `--seeds` adds replicates, it
      never drops the finished ones from the summary).
  """

  def __init__(self, layout: ExperimentLayout, writes: bool, store=None):
    self.layout = layout
    self.writes = writes
    self.store = store if store is not None else ArtifactStore(writes)
    self.where = ""
    self.seeds: Tuple[int, ...] = ()

  def locked(self, body: Callable[[], List[Dict]], deterministic: bool = False) -> List[Dict]:
    """Runs `body()` holding the directory's lock (chief only), after removing what a killed run left half-written; `deterministic` enables TensorFlow's
    op determinism first."""
    if deterministic:
      distribute.enable_determinism()
    lock = io.DirectoryLock(self.layout.directory) if self.writes else contextlib.nullcontext()
    with lock:
      if self.writes:
        io.remove_temporary_files(self.layout.directory)
      try:
        return body()
      except KeyboardInterrupt as interrupt:  # Ctrl-C, or SIGTERM turned into an Interrupted
        if self.writes:  # what the killed workers were writing
          io.remove_temporary_files(self.layout.directory)
        raise Interrupted(getattr(interrupt, "signum", signal.SIGINT), self.where) from None

  def write_config(self, resolved: Dict, flags_text: str = "",
                   check_previous: Optional[Callable[[str, ExperimentConfig], None]] = None
                   ) -> None:
    """Writes `config.json` (with the experiment hash, and every replicate the directory holds:
    `seeds`) and `flags.txt`. The config a previous run recorded, if there is one, is read once
    (`rundir.finished.parse_config`; an unreadable one is refused in one line) and given with
    its path to `check_previous`, which may refuse it."""
    seeds = tuple(resolved["runtime"]["seeds"])
    if not self.writes:
      self.seeds = seeds
      return
    resolved = dict(resolved, experiment_hash=self.layout.experiment_hash)
    path = self.layout.config_file
    if os.path.exists(path):
      try:
        # Fields added since that run take their defaults, exactly as in the hash.
        previous = finished.parse_config(path, io.read_json(path)).config
      except UserError as error:
        raise UserError(f"{path} is not a readable experiment config ({error}); delete it and "
                        "rerun to write it again from these flags (the directory is named by "
                        "their hash)") from None
      if check_previous is not None:
        check_previous(path, previous)
      seeds = tuple(sorted(set(seeds) | set(previous.runtime.seeds)))
    self.seeds = seeds
    resolved["runtime"] = dict(resolved["runtime"], seeds=list(seeds))
    io.write_json(self.layout.config_file, resolved)
    if flags_text:
      io.write_text(self.layout.flags_file, flags_text)

  def finished_metrics(self, slots: Iterable[Slot]) -> List[Dict]:
    """The metrics of every finished branch among `slots`, in their order."""
    out = []
    for seed, level, branch in slots:
      files = BranchFiles(self.layout.branch_dir(seed, level, branch))
      if self.store.exists(files.metrics):
        out.append(self.store.read_json(files.metrics))
    return out

  def write_summary(self, slots: Iterable[Slot]) -> List[Dict]:
    """`summary.json` and `compute.json` from the finished branches; returns the rows."""
    metrics = self.finished_metrics(slots)
    rows = [results.summary_row(m) for m in metrics]
    if self.writes:
      io.write_json(self.layout.summary_file, rows)
      io.write_json(self.layout.compute_file, results.compute_summary(metrics))
    return rows
