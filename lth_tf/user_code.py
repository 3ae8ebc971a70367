"""A user's own function named as `package.module:function` (a model or a dataset): import,
digest, and consent (code a ticket or an experiment directory names runs only when the user
named that code: `check_consent`).

The module is imported as `python -m` would import it: from the current directory first, then
`PYTHONPATH` and the installed packages. Its source file's SHA-256 pins the experiment: an edited
model or dataset function is a new experiment, never a silent change inside an old one.
"""
import dataclasses
import hashlib
import importlib
import importlib.machinery
import os
import re
import shutil
import sys
import sysconfig
import tempfile
from typing import Callable, Dict, Tuple

from lth_tf.errors import ConfigError

# The file and digest of each user module when it was imported, to see it edited or replaced
# within one process.
_imported: Dict[str, Tuple[str, str]] = {}
_SPEC = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$")


def is_spec(name: str) -> bool:
  """Whether `name` has the form `package.module:function`."""
  return bool(_SPEC.match(name))


def _importable_from_cwd() -> None:
  cwd = os.getcwd()
  if cwd not in sys.path and "" not in sys.path:
    sys.path.insert(0, cwd)


def _split(spec: str, what: str):
  if not is_spec(spec):
    raise ConfigError(f"{what} {spec!r}: expected package.module:function")
  module, _, function = spec.partition(":")
  return module, function


def source_file(spec: str, what: str) -> str:
  """The source file of the spec's module as an import now would find it, without running it
  (an already imported module of that name may come from another file)."""
  module, _ = _split(spec, what)
  _importable_from_cwd()
  locations, found = None, None
  parts = module.split(".")
  for depth in range(1, len(parts) + 1):
    try:
      found = importlib.machinery.PathFinder.find_spec(".".join(parts[:depth]), locations)
    except (ImportError, ValueError) as error:
      raise ConfigError(f"{what} {spec!r}: cannot find module {module!r} ({error})") from None
    if found is None:
      break
    locations = found.submodule_search_locations
  if found is None or not found.origin or not os.path.isfile(found.origin):
    raise ConfigError(f"{what} {spec!r}: no module named {module!r} (looked in the current "
                      "directory and on PYTHONPATH)")
  return os.path.abspath(found.origin)


def digest(spec: str, what: str) -> str:
  """SHA-256 of the spec's module source file."""
  return _file_digest(source_file(spec, what))


def _file_digest(path: str) -> str:
  with open(path, "rb") as handle:
    return hashlib.sha256(handle.read()).hexdigest()


def load(spec: str, what: str) -> Callable:
  """Imports the module and returns the named function.

  Raises:
    ConfigError: a malformed spec, a missing module or function, a module that fails to import
      (its own error in one line), or an attribute that is not callable.
  """
  module_name, function = _split(spec, what)
  path = source_file(spec, what)
  current = _file_digest(path)
  loaded, record = sys.modules.get(module_name), _imported.get(module_name)
  if loaded is not None:
    same_file = os.path.abspath(getattr(loaded, "__file__", None) or "") == path
    if not same_file or (record is not None and record[1] != current):
      del sys.modules[module_name]  # another file, or edited since imported: import it anew
  try:
    module = importlib.import_module(module_name)
    _imported[module_name] = (path, current)
  except Exception as error:  # the user's module raised while importing: report it in one line
    raise ConfigError(f"{what} {spec!r}: importing {module_name!r} failed: "
                      f"{type(error).__name__}: {error}") from None
  target = getattr(module, function, None)
  if target is None:
    raise ConfigError(f"{what} {spec!r}: module {module_name!r} has no {function!r}")
  if not callable(target):
    raise ConfigError(f"{what} {spec!r}: {function!r} is not a function")
  return target


PY_SCHEME = "py:"


def shipped_sources(config) -> Tuple[str, ...]:
  """What a remote worker needs to import the user code `config` names (model and dataset
  functions): the top-level package directory of each one's module, or the module's file for
  a module outside any package; none for code installed as a package (site-packages). `pack`
  reads them, `unpack` makes them importable where they arrive."""
  installed = {os.path.abspath(path) for path in (sysconfig.get_paths()["purelib"],
                                                   sysconfig.get_paths()["platlib"])}
  out = []
  for part in ("model", "dataset"):
    spec = _source_spec(part, getattr(config, part).name)
    if spec is None:
      continue
    path = source_file(spec, part)
    depth = spec.partition(":")[0].count(".")
    if os.path.basename(path) == "__init__.py":
      depth += 1
    for _ in range(depth):
      path = os.path.dirname(path)
    if not any(path.startswith(root + os.sep) for root in installed):
      out.append(path)
  return tuple(dict.fromkeys(out))


def _source_spec(part: str, name: str):
  """The `package.module:function` a config part names, or None for a built-in name."""
  if part == "model" and is_spec(name):
    return name
  if part == "dataset" and name.startswith(PY_SCHEME):
    return name[len(PY_SCHEME):]
  return None


def pack(config) -> Dict[str, bytes]:
  """The files of `shipped_sources(config)`, by path relative to the directory that holds them
  (what `unpack` puts on `sys.path`); compiled files left out."""
  files = {}
  for path in shipped_sources(config):
    if os.path.isfile(path):
      paths = [path]
    else:
      paths = [os.path.join(here, name) for here, _, names in os.walk(path)
               if "__pycache__" not in here.split(os.sep)
               for name in names if not name.endswith(".pyc")]
    for full in paths:
      with open(full, "rb") as handle:
        files[os.path.relpath(full, os.path.dirname(path))] = handle.read()
  return files


def unpack(files: Dict[str, bytes]) -> None:
  """Writes `pack`'s files into a directory named by their digest (once per machine) and puts
  it first on `sys.path`, so that the user code they hold imports here as it did where they
  were packed."""
  if not files:
    return
  parent = os.path.join(tempfile.gettempdir(), "lth_user_code")
  directory = os.path.join(parent, hashlib.sha256(repr(sorted(files.items())).encode()
                                                  ).hexdigest()[:16])
  if not os.path.isdir(directory):
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(dir=parent)
    for name, data in files.items():
      os.makedirs(os.path.dirname(os.path.join(staging, name)), exist_ok=True)
      with open(os.path.join(staging, name), "wb") as handle:
        handle.write(data)
    try:
      os.rename(staging, directory)
    except OSError:  # another worker of this machine unpacked them first
      shutil.rmtree(staging, ignore_errors=True)
  if directory not in sys.path:
    sys.path.insert(0, directory)


def check_pin(part: str, name: str, pinned: str) -> None:
  """Refuses a user function whose module changed since its digest was recorded."""
  spec = _source_spec(part, name)
  if spec is None:
    if pinned:
      raise ConfigError(f"{part}_sha256 is set but {part} {name!r} is not a "
                        f"{'py:' if part == 'dataset' else ''}package.module:function")
    return
  current = digest(spec, part)
  if pinned and pinned != current:
    raise ConfigError(f"{part} {name!r}: its module changed since it was recorded (sha256 "
                      f"{pinned[:12]}..., now {current[:12]}...); an edited {part} function is a "
                      "new experiment: drop the recorded sha256 to start one")


def pin_sources(config):
  """`config` with the module digest of a user model or dataset function filled in.

  Raises:
    ConfigError: a missing module, or a recorded digest that the module no longer has.
  """
  changes = {}
  for part in ("model", "dataset"):
    section = getattr(config, part)
    check_pin(part, section.name, section.source_sha256)
    spec = _source_spec(part, section.name)
    if spec is not None and not section.source_sha256:
      changes[part] = dataclasses.replace(section, source_sha256=digest(spec, part))
  return config.replace(**changes) if changes else config


# ---- consent: code a ticket or an experiment directory names ----------------------------------

# The user code a ticket or an experiment directory may run in this process: the names (as the
# config writes them, `package.module:function` or `py:package.module:function`) the user gave
# on the command line (`--model`, `--dataset`, `--target_dataset`, `--trust_code`) or to
# `trust`. A file is data: what it names runs only when the user named that exact code.
_trusted = set()
TRUST_FLAG = "trust_code"


def trust(names) -> None:
  """Allows tickets and experiment directories to run the user code `names` (config names)."""
  _trusted.update(str(name) for name in names if name)


def is_trusted(name: str) -> bool:
  """Whether the user named the code `name` (a config name) in this process."""
  return name in _trusted


def named_code(config, parts=("model", "dataset")) -> Tuple[str, ...]:
  """The user code an `ExperimentConfig` names (model and dataset functions), by config name."""
  names = []
  for part in parts:
    name = getattr(config, part).name
    if _source_spec(part, name) is not None:
      names.append(name)
  return tuple(names)


def check_consent(config, source: str, parts=("model", "dataset")) -> None:
  """Refuses, in one line and before anything is imported, a config read from a file (`source`:
  a ticket, an experiment directory) that names user code the user did not name (among the
  config's `parts` that will run)."""
  untrusted = [name for name in named_code(config, parts) if name not in _trusted]
  if untrusted:
    raise ConfigError(
        f"{source} names code that would run: {', '.join(untrusted)}; a ticket or an "
        "experiment directory may name only registered models and datasets unless you name "
        f"that code yourself: add --{TRUST_FLAG}={','.join(untrusted)} if you trust it")
