"""Replicates trained at the same time in worker processes (`--replicate_processes=N`).

A small network's training step does not keep several CPU cores busy: its matrix products are
too small to gain from more threads. Replicates (seeds) are independent, so N worker processes,
each training whole replicates with one thread per TensorFlow operation, use N cores where one
process uses one.

The parent process keeps the experiment directory's lock, has written `config.json`, and writes
the summary once every worker has finished; a worker writes only inside its own
`replicate_<seed>/` directory and resumes it exactly as a one-process run would. A worker gets
its config as JSON on stdin (`python -m lth_tf.lottery.worker`), so it trains exactly the
parent's experiment. The first failure stops the other workers and is raised in the parent
with the worker's own message: a `UserError` or `TrainingDiverged` as if it had happened in the
parent.

A worker dies with its parent, however the parent dies (a SIGKILL included): on Linux the kernel
kills it (`PR_SET_PDEATHSIG`), elsewhere a thread of the worker sees its parent gone within a
second. Workers inherit the parent's locked descriptor of the experiment directory's lock, so
the lock stays held until the last of them has exited: a rerun never runs beside them.
"""
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence

from lth_tf.config import ExperimentConfig
from lth_tf.errors import TrainingDiverged, UserError

# Exit codes of a worker (`lth_tf.lottery.worker`): 0 done, 2 bad input (`UserError`), 3
# training diverged.
EXIT_USER_ERROR, EXIT_DIVERGED = 2, 3
_POLL_S = 0.2


def worker_config(config: ExperimentConfig, seed: int) -> ExperimentConfig:
  """The config a worker trains `seed` with: one seed, one thread per op unless set, no
  progress bar (several workers' bars would interleave)."""
  runtime = config.runtime
  return config.replace(runtime=dataclasses.replace(
      runtime, seeds=(seed,), replicate_processes=1, progress=False,
      intra_op_threads=runtime.intra_op_threads or 1))


def run_replicates(config: ExperimentConfig, seeds: Sequence[int], processes: int,
                   lock_fd: Optional[int] = None) -> None:
  """Trains every replicate in `seeds`, at most `processes` worker processes at a time; the
  workers inherit `lock_fd`, the descriptor that holds the experiment directory's lock."""
  package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  env = dict(os.environ)
  env["PYTHONPATH"] = package_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH")
                                      else "")
  pending: List[int] = list(seeds)
  running: Dict[int, tuple] = {}
  try:
    while pending or running:
      while pending and len(running) < processes:
        seed = pending.pop(0)
        errors = tempfile.TemporaryFile(mode="w+")
        process = subprocess.Popen(
            [sys.executable, "-m", "lth_tf.lottery.worker", str(os.getpid())],
            stdin=subprocess.PIPE, stderr=errors, env=env, text=True,
            pass_fds=() if lock_fd is None else (lock_fd,))
        process.stdin.write(json.dumps(worker_config(config, seed).to_dict()))
        process.stdin.close()
        running[seed] = (process, errors)
      time.sleep(_POLL_S)
      for seed, (process, errors) in list(running.items()):
        code = process.poll()
        if code is None:
          continue
        del running[seed]
        if code:
          errors.seek(0)
          raise _failure(seed, code, errors.read())
        errors.close()
  finally:
    for process, errors in running.values():
      process.kill()
      process.wait()
      errors.close()


def _failure(seed: int, code: int, stderr: str) -> Exception:
  lines = [line for line in stderr.strip().splitlines() if line.strip()]
  message = lines[-1] if lines else f"exit code {code}"
  if code == EXIT_USER_ERROR:
    return UserError(message)
  if code == EXIT_DIVERGED:
    return TrainingDiverged(message)
  return RuntimeError(f"the worker process of replicate {seed} failed (exit code {code}): "
                      f"{message}")
