"""A worker process of `--replicate_processes` (`lth_tf.lottery.processes` starts it): trains one
replicate of the config it reads as JSON on stdin, and dies with its parent process."""
import contextlib
import ctypes
import json
import os
import signal
import sys
import threading
import time

from lth_tf.config import ExperimentConfig
from lth_tf.errors import TrainingDiverged, UserError
from lth_tf.lottery import processes
from lth_tf.lottery.runner import LotteryExperiment

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _die_with_parent(parent: int) -> None:
  """Makes this worker die when `parent` does, even by SIGKILL."""
  with contextlib.suppress(OSError, AttributeError):  # prctl is Linux-only
    ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
  if os.getppid() != parent:  # the parent died before prctl: it will not kill us
    os._exit(1)

  def watch() -> None:
    while os.getppid() == parent:
      time.sleep(1)
    os.kill(os.getpid(), signal.SIGKILL)

  threading.Thread(target=watch, daemon=True).start()


def _worker_main() -> int:
  config = ExperimentConfig.from_dict(json.load(sys.stdin))
  try:
    LotteryExperiment(config).run_replicate(config.runtime.seeds[0])
  except UserError as error:
    print(error, file=sys.stderr)
    return processes.EXIT_USER_ERROR
  except TrainingDiverged as error:
    print(error, file=sys.stderr)
    return processes.EXIT_DIVERGED
  except KeyboardInterrupt:  # Ctrl-C reaches every process of the terminal: the parent reports
    return 128 + signal.SIGINT
  return 0


if __name__ == "__main__":
  _die_with_parent(int(sys.argv[1]))
  sys.exit(_worker_main())
