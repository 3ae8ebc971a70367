"""Starts the tests' Python processes from one interpreter that has already imported TensorFlow.

A test that runs `python -m lth_tf.cli ...`, `python -c SCRIPT ...` or `python SCRIPT.py ...`
spends most of its time importing TensorFlow (about 6 CPU-seconds each time). `run` and `start`
take the same arguments as `subprocess.run` and `subprocess.Popen`, but each process is a fork
of a per-test-worker *zygote* that has imported TensorFlow, tf_keras and tfmot and nothing else:
no TensorFlow context, thread pool or device exists in it yet, so each child sizes its own
thread pools and devices exactly as a freshly started interpreter does. The child is a real
process with its own pid, environment, working directory, `sys.argv`, `sys.path` (its
`PYTHONPATH` is applied), standard streams and exit status (a signal that kills it is a
negative return code, as with `subprocess`); `lth_tf` and every other module are imported in
the child, fresh.

Tests whose point is the import itself (what a command imports, what TensorFlow prints at
start-up) keep using `subprocess`, and so does any call whose environment differs from the
zygote's in a variable read at import time (`IMPORT_TIME`): `run` and `start` fall back to
`subprocess` for those, for argument lists they do not recognise, and while a child started
before is still running (the zygote runs one at a time). `LTH_TEST_FORK=0` starts every process
anew, as `subprocess` does.
"""
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading

# Read while TensorFlow is imported: a child whose value differs is started as a new process.
IMPORT_TIME = ("TF_CPP_MIN_LOG_LEVEL", "TF_USE_LEGACY_KERAS", "LTH_VERBOSE_IMPORT",
               "TF_ENABLE_ONEDNN_OPTS", "CUDA_VISIBLE_DEVICES", "PYTHONHASHSEED", "TF_XLA_FLAGS")

_ZYGOTE = r"""
import json, os, sys
import lth_tf.compat  # TensorFlow, tf_keras and tfmot: imported, no context created
BASE_PATH = [p for p in sys.path[1:] if p not in os.environ.get("PYTHONPATH", "").split(os.pathsep)]
requests = sys.stdin.buffer
replies = os.fdopen(os.dup(1), "w")
os.dup2(os.open(os.devnull, os.O_WRONLY), 1)

def child(request):
  import io, runpy, signal, threading, traceback
  signal.signal(signal.SIGINT, signal.default_int_handler)
  signal.signal(signal.SIGTERM, signal.SIG_DFL)
  os.chdir(request["cwd"])
  os.environ.clear()
  os.environ.update(request["env"])
  os.dup2(os.open(request["stdin"], os.O_RDONLY), 0)
  os.dup2(os.open(request["stdout"], os.O_WRONLY), 1)
  os.dup2(os.open(request["stderr"], os.O_WRONLY), 2)
  unbuffered = bool(os.environ.get("PYTHONUNBUFFERED"))
  sys.stdin = open(0, "r", closefd=False)
  sys.stdout = open(1, "w", closefd=False, buffering=1 if unbuffered else -1)
  sys.stderr = open(2, "w", closefd=False, buffering=1)
  extra = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
  kind, target, rest = request["kind"], request["target"], request["argv"]
  first = os.path.dirname(os.path.abspath(target)) if kind == "path" else ""
  sys.path[:] = [first] + extra + BASE_PATH
  if "numpy" in sys.modules:  # a fresh interpreter seeds numpy's global generator anew
    sys.modules["numpy"].random.seed()
  code = 0
  try:
    if kind == "module":
      sys.argv = [target] + rest
      runpy.run_module(target, run_name="__main__", alter_sys=True)
    elif kind == "code":
      sys.argv = ["-c"] + rest
      exec(compile(target, "<string>", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
    else:
      sys.argv = [target] + rest
      runpy.run_path(target, run_name="__main__")
  except SystemExit as exit_:
    if exit_.code is None:
      code = 0
    elif isinstance(exit_.code, int):
      code = exit_.code
    else:
      print(exit_.code, file=sys.stderr)
      code = 1
  except KeyboardInterrupt:
    traceback.print_exc()
    code = -signal.SIGINT
  except BaseException:
    traceback.print_exc()
    code = 1
  threading._shutdown()
  import atexit
  atexit._run_exitfuncs()
  sys.stdout.flush()
  sys.stderr.flush()
  if code == -signal.SIGINT:  # as an interpreter stopped by an uncaught KeyboardInterrupt
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)
  os._exit(code & 0xFF)

replies.write("ready\n")
replies.flush()
for line in requests:
  request = json.loads(line)
  pid = os.fork()
  if pid == 0:
    child(request)
  replies.write(json.dumps({"pid": pid}) + "\n")
  replies.flush()
  _, status = os.waitpid(pid, 0)
  replies.write(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}) + "\n")
  replies.flush()
"""


class _Zygote:
  """One pre-started interpreter per test worker; it forks one child at a time."""

  def __init__(self):
    self.env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3"))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    self.process = subprocess.Popen([sys.executable, "-c", _ZYGOTE], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, env=self.env, cwd=root, text=True)
    ready = self.process.stdout.readline()
    if ready != "ready\n":
      raise RuntimeError(f"the test launcher did not start: {ready!r}")

  def serves(self, env) -> bool:
    return (self.process.poll() is None
            and all(env.get(name) == self.env.get(name) for name in IMPORT_TIME))


_zygote = None


def _get_zygote():
  global _zygote
  if _zygote is None or _zygote.process.poll() is not None:
    _zygote = _Zygote()
  return _zygote


def _parse(args):
  """(kind, target, rest) for `python -m M ...`, `python -c CODE ...`, `python FILE ...`."""
  args = [os.fspath(a) for a in args]
  if not args or args[0] != sys.executable or len(args) < 2:
    return None
  if args[1] in ("-m", "-c"):
    if len(args) < 3:
      return None
    return ("module" if args[1] == "-m" else "code"), args[2], args[3:]
  if args[1].startswith("-"):
    return None
  return "path", args[1], args[2:]


class Process:
  """The running child: `pid`, `poll`, `wait`, `send_signal`, `kill`, `communicate`, and
  `stdout`/`stderr` as text streams when asked for with `subprocess.PIPE`."""

  def __init__(self, zygote, args, pid, streams, holders, temporary):
    self.args, self.pid, self._zygote = args, pid, zygote
    self.stdout, self.stderr = streams.get("stdout"), streams.get("stderr")
    # Write ends of the FIFOs, held until the child's exit is known: a FIFO reads as ended
    # whenever no writer has it open, so until the child has opened its own ends these keep
    # the streams from ending early.
    self._holders, self._temporary = holders, temporary
    self.returncode = None

  def poll(self):
    if self.returncode is None:
      ready, _, _ = select.select([self._zygote.process.stdout], [], [], 0)
      if ready:
        self._finish()
    return self.returncode

  def _finish(self):
    line = self._zygote.process.stdout.readline()
    if not line:
      raise RuntimeError("the test launcher stopped")
    self.returncode = json.loads(line)["returncode"]
    for fd in self._holders:
      os.close(fd)
    self._holders = ()

  def wait(self, timeout=None):
    if self.returncode is None:
      ready, _, _ = select.select([self._zygote.process.stdout], [], [], timeout)
      if not ready:
        raise subprocess.TimeoutExpired(self.args, timeout)
      self._finish()
    return self.returncode

  def send_signal(self, signum):
    if self.returncode is None:
      os.kill(self.pid, signum)

  def kill(self):
    self.send_signal(signal.SIGKILL)

  def terminate(self):
    self.send_signal(signal.SIGTERM)

  def communicate(self, timeout=None):
    """Waits for the child while reading its piped streams (so a child that writes more than a
    pipe holds never blocks); returns what it wrote to them that was not read before. Unlike
    `subprocess.Popen.communicate`, a timeout kills the child before it is raised."""
    outs, threads = {}, []
    for name in ("stdout", "stderr"):
      stream = getattr(self, name)
      if stream is not None:
        outs[name] = []
        threads.append(threading.Thread(target=_drain, args=(stream, outs[name]), daemon=True))
        threads[-1].start()
    try:
      self.wait(timeout)
    except subprocess.TimeoutExpired:
      self.kill()
      self.wait()
      raise
    finally:  # the child's exit closed its ends of the streams, and wait() closed ours
      for thread in threads:
        thread.join()
      self.close()
    return tuple(outs[name][0] if name in outs else None for name in ("stdout", "stderr"))

  def close(self):
    for stream in (self.stdout, self.stderr):
      if stream is not None:
        stream.close()
    for path in self._temporary:
      try:
        os.rmdir(path) if os.path.isdir(path) else os.unlink(path)
      except OSError:
        pass
    self._temporary = ()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    if self.returncode is None:
      self.kill()
      self.wait()
    self.close()


_current = None  # the zygote runs one child at a time: the last one started


def start(args, stdin=None, stdout=None, stderr=None, env=None, cwd=None, text=False, input=None,
          **unsupported):
  """As `subprocess.Popen`, from the zygote (or `subprocess.Popen` where the zygote cannot)."""
  global _current
  env = dict(os.environ if env is None else env)
  parsed = _parse(args)
  forks = parsed is not None and not unsupported and stdin is None
  zygote = _get_zygote() if forks and os.environ.get("LTH_TEST_FORK", "1") != "0" else None
  busy = _current is not None and _current.poll() is None  # a child started before still runs
  if zygote is None or busy or not zygote.serves(env):
    return subprocess.Popen(args, stdin=subprocess.PIPE if input is not None else stdin,
                            stdout=stdout, stderr=stderr, env=env, cwd=cwd, text=text,
                            **unsupported)
  directory = tempfile.mkdtemp(prefix="launch-")
  files, readers, holders = {"stdin": os.devnull}, {}, []
  for name, where in (("stdout", stdout), ("stderr", stderr)):
    if where == subprocess.PIPE:
      files[name] = os.path.join(directory, name)
      os.mkfifo(files[name])  # read while the child writes, as a pipe is
      readers[name] = os.open(files[name], os.O_RDONLY | os.O_NONBLOCK)
      holders.append(os.open(files[name], os.O_WRONLY | os.O_NONBLOCK))
      os.set_blocking(readers[name], True)
    elif where in (subprocess.DEVNULL, None):
      files[name] = os.devnull
    else:
      raise ValueError(f"unsupported {name}: {where!r}")
  if input is not None:
    files["stdin"] = os.path.join(directory, "stdin")
    with open(files["stdin"], "w" if isinstance(input, str) else "wb") as handle:
      handle.write(input)
  kind, target, rest = parsed
  request = {"kind": kind, "target": target, "argv": rest, "env": env,
             "cwd": os.fspath(cwd) if cwd is not None else os.getcwd(), **files}
  zygote.process.stdin.write(json.dumps(request) + "\n")
  zygote.process.stdin.flush()
  reply = zygote.process.stdout.readline()
  if not reply:
    raise RuntimeError("the test launcher stopped")
  mode = "r" if text else "rb"
  streams = {name: os.fdopen(fd, mode) for name, fd in readers.items()}
  temporary = [os.path.join(directory, n) for n in ("stdout", "stderr", "stdin")] + [directory]
  _current = Process(zygote, args, json.loads(reply)["pid"], streams, holders, temporary)
  return _current


def _drain(stream, into):
  into.append(stream.read())


def run(args, capture_output=False, text=False, env=None, cwd=None, input=None, timeout=None,
        check=False, stdout=None, stderr=None, **unsupported):
  """As `subprocess.run`, from the zygote (or `subprocess.run` where the zygote cannot)."""
  if capture_output:
    stdout = stderr = subprocess.PIPE
  process = start(args, stdout=stdout, stderr=stderr, env=env, cwd=cwd, text=text, input=input,
                  **unsupported)
  if isinstance(process, subprocess.Popen):
    with process:
      try:
        out, err = process.communicate(input=input, timeout=timeout)
      except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
  else:
    out, err = process.communicate(timeout)
  result = subprocess.CompletedProcess(args, process.returncode, out, err)
  if check:
    result.check_returncode()
  return result


def free_ports(count):
  """`count` TCP ports free on this machine now, for the processes a test starts to listen on."""
  probes = [socket.socket() for _ in range(count)]
  for probe in probes:
    probe.bind(("127.0.0.1", 0))
  ports = [probe.getsockname()[1] for probe in probes]
  for probe in probes:
    probe.close()
  return ports
