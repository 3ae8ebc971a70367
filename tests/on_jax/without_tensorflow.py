"""Runs lth_tf as on a machine without TensorFlow, on Keras 3's JAX backend.

    python tests/on_jax/without_tensorflow.py find --model=... --framework=keras3 ...   # `lth`
    python tests/on_jax/without_tensorflow.py --script FILE ARGS...                      # a script

Importing `tensorflow`, `tf_keras` or `tensorflow_model_optimization` (or any of their modules)
raises ImportError, as where they are not installed. Every such attempt is recorded with the
code that made it: the nearest caller outside the import machinery. Keras 3 itself tries
TensorFlow in places (`keras.utils.set_random_seed`, `model.fit`'s data adapters) and copes with
its absence: those attempts are Keras's, printed as `keras tried to import: [...]`. At exit the
attempts made by lth_tf's own modules are printed on the last line of stderr as `lth_tf tried
to import: [...]`, and the exit status is 3 if there was one (whatever the command's own
status): a module of lth_tf that imports TensorFlow and copes with its absence is caught too.
"""
import importlib.abc
import os
import runpy
import sys

BLOCKED = ("tensorflow", "tf_keras", "tensorflow_model_optimization")
PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))), "lth_tf") + os.sep
BY_LTH_TF, BY_KERAS = [], []


def _caller() -> str:
  """The file of the nearest frame outside the import machinery and this file."""
  frame = sys._getframe(2)  # pylint: disable=protected-access
  while frame is not None:
    name = frame.f_code.co_filename
    if not (name.startswith("<frozen") or "importlib" in name or name == __file__):
      return name
    frame = frame.f_back
  return ""


class _Absent(importlib.abc.MetaPathFinder):
  def find_spec(self, fullname, path=None, target=None):
    if fullname.split(".")[0] in BLOCKED:
      caller = _caller()
      if caller.startswith(PACKAGE):
        BY_LTH_TF.append(f"{fullname} from {os.path.relpath(caller, os.path.dirname(PACKAGE))}")
      elif f"{os.sep}keras{os.sep}" in caller:
        BY_KERAS.append(fullname)
      raise ImportError(f"No module named {fullname!r} (not installed here)")
    return None


def main() -> int:
  os.environ["KERAS_BACKEND"] = "jax"
  sys.meta_path.insert(0, _Absent())
  status = 0
  try:
    if sys.argv[1:2] == ["--script"]:
      sys.argv = sys.argv[2:]
      runpy.run_path(sys.argv[0], run_name="__main__")
    else:
      sys.argv = ["lth"] + sys.argv[1:]
      from lth_tf import cli  # pylint: disable=import-outside-toplevel
      cli.main()
  except SystemExit as exit_:
    status = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
  finally:
    print(f"keras tried to import: {sorted(set(BY_KERAS))}", file=sys.stderr, flush=True)
    print(f"lth_tf tried to import: {sorted(set(BY_LTH_TF))}", file=sys.stderr, flush=True)
  return 3 if BY_LTH_TF else status


if __name__ == "__main__":
  sys.exit(main())
