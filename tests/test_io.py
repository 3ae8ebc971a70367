"""Failed atomic writes, and the directory lock under simultaneous starts and stale owners."""
import errno
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from lth_tf import io
from lth_tf.errors import UserError, WriteError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Takes the lock over and over until `deadline`; while holding it, creates `holder` with
# O_EXCL, which fails if another process holds the lock too. No TensorFlow is imported.
_CONTENDER = """
import os, sys, time
from lth_tf import io
from lth_tf.errors import UserError
assert "tensorflow" not in sys.modules
directory = sys.argv[1]
holder, go = os.path.join(directory, "holder"), os.path.join(directory, "go")
open(os.path.join(directory, f"ready-{os.getpid()}"), "w").close()
while not os.path.exists(go):
  time.sleep(0.001)
deadline = time.time() + 2
held = overlaps = 0
while time.time() < deadline:
  try:
    with io.DirectoryLock(directory):
      try:
        os.close(os.open(holder, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
      except FileExistsError:
        overlaps += 1
        continue
      held += 1
      time.sleep(0.001)
      os.remove(holder)
  except UserError:
    pass
print(held, overlaps)
"""

_HOLDER = """
import sys, time
from lth_tf import io
with io.DirectoryLock(sys.argv[1]):
  print("locked", flush=True)
  time.sleep(60)
"""


def _python(script, *args, **kwargs):
  return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], cwd=ROOT,
                          stdout=subprocess.PIPE, text=True, **kwargs)


def test_simultaneous_starts_never_hold_the_lock_together(tmp_path):
  contenders = [_python(_CONTENDER, tmp_path) for _ in range(30)]
  while len(list(tmp_path.glob("ready-*"))) < len(contenders):  # all started: go together
    assert all(c.poll() is None for c in contenders)
    time.sleep(0.01)
  (tmp_path / "go").touch()
  outputs = [c.communicate(timeout=60)[0] for c in contenders]
  assert [c.returncode for c in contenders] == [0] * len(contenders), outputs
  results = [tuple(map(int, output.split())) for output in outputs]
  assert sum(overlaps for _, overlaps in results) == 0, results
  assert sum(held for held, _ in results) > 30  # the lock really changed hands under contention
  assert not os.path.exists(os.path.join(tmp_path, ".lock"))


def test_a_lock_file_naming_a_live_process_that_holds_no_lock_is_taken_over(tmp_path):
  sleeper = subprocess.Popen(["sleep", "60"])  # alive, not lth: its pid was reused, say
  try:
    (tmp_path / ".lock").write_text(str(sleeper.pid))
    with io.DirectoryLock(str(tmp_path)):
      assert (tmp_path / ".lock").read_text().strip() == str(os.getpid())
  finally:
    sleeper.kill()
    sleeper.wait()
  assert not (tmp_path / ".lock").exists()


def test_a_live_holder_refuses_until_it_is_killed(tmp_path):
  holder = _python(_HOLDER, tmp_path)
  try:
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(UserError, match=f"in use by another lth process \\(pid {holder.pid}\\)"):
      with io.DirectoryLock(str(tmp_path)):
        pass
  finally:
    holder.send_signal(signal.SIGKILL)
    holder.wait()
  assert (tmp_path / ".lock").exists()  # a killed holder cannot delete it: stale, taken over
  with io.DirectoryLock(str(tmp_path)):
    pass


@pytest.mark.parametrize("code,message", [
    (errno.ENOSPC, "no space left on device while writing {}; the files written so far are "
                   "intact: free space and rerun to resume"),
    (errno.EROFS, "read-only file system while writing {}; the files written so far are intact: "
                  "make it writable and rerun to resume"),
    (errno.EACCES, "permission denied while writing {}; the files written so far are intact: "
                   "make it writable and rerun to resume"),
])
def test_a_failed_write_is_one_line_naming_the_file_and_leaves_the_old_file(tmp_path, monkeypatch,
                                                                            code, message):
  path = tmp_path / "metrics.json"
  io.write_json(str(path), {"old": 1})

  def replace(source, target):
    raise OSError(code, os.strerror(code))

  monkeypatch.setattr(os, "replace", replace)
  with pytest.raises(WriteError) as raised:
    io.write_json(str(path), {"new": 2})
  assert str(raised.value) == message.format(path)
  assert io.read_json(str(path)) == {"old": 1}
  assert os.listdir(tmp_path) == ["metrics.json"]  # no temporary file left


def test_a_full_disk_can_be_injected_at_the_nth_write(tmp_path, monkeypatch):
  monkeypatch.setenv("LTH_FAULT_ENOSPC_AT", "write:a.npz@2")
  io.write_arrays(str(tmp_path / "a.npz"), {"x": np.zeros(3)})
  with pytest.raises(WriteError, match="no space left on device while writing .*a.npz"):
    io.write_arrays(str(tmp_path / "a.npz"), {"x": np.ones(3)})
  np.testing.assert_array_equal(io.read_arrays(str(tmp_path / "a.npz"))["x"], np.zeros(3))
  assert os.listdir(tmp_path) == ["a.npz"]


def test_checkpoints_are_stored_and_kept_states_compressed_both_read_back(tmp_path):
  import zipfile
  from lth_tf.rundir import states
  weights = {"dense/kernel:0": np.arange(12, dtype=np.float32).reshape(3, 4)}
  optimizer = {"optimizer/0000": np.array(5, np.int64)}
  checkpoint = states.TrainingState(weights, optimizer, 7, [{"iteration": 0}])
  rewind = states.TrainingState(weights, optimizer)
  states.write(io, str(tmp_path / "checkpoint.npz"), checkpoint)
  states.write(io, str(tmp_path / "rewind_point.npz"), rewind)
  for name, kind in (("checkpoint.npz", zipfile.ZIP_STORED),
                     ("rewind_point.npz", zipfile.ZIP_DEFLATED)):
    with zipfile.ZipFile(tmp_path / name) as archive:
      assert {entry.compress_type for entry in archive.infolist()} == {kind}, name
  read = states.read(io, str(tmp_path / "checkpoint.npz"))
  assert read.iteration == 7 and read.curve == [{"iteration": 0}]
  assert np.array_equal(read.weights["dense/kernel:0"], weights["dense/kernel:0"])
  assert states.read(io, str(tmp_path / "rewind_point.npz")).iteration is None
