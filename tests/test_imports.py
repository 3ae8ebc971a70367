"""The package's import graph: no cycle between modules, and function-level imports only where
a module must not start TensorFlow (the command line, reading results) or an optional
dependency is needed."""
import ast
import os
import sys

import lth_tf

ROOT = os.path.dirname(lth_tf.__file__)

# Modules that may import inside a function, and why.
LAZY = {
    "lth_tf.cli": "each command loads its own modules, so `lth report` and --help need no TensorFlow",
    "lth_tf.flags": "--ticket is read only when given (the flags load with every command)",
    "lth_tf.data.tfds_source": "TensorFlow Datasets only when a tfds: dataset is read",
    "lth_tf.export.check": "runs in a clean interpreter beside the exported files",
    "lth_tf.pruning": "the Keras side (wrapper, masked model) loads TensorFlow on first use, so "
                      "that reading masks needs none",
    "lth_tf.analysis.masks": "a saved ticket's reader loads TensorFlow: only when a ticket is compared",
    "lth_tf.pruning.strategies.snip": "the gradients load TensorFlow: only when a mask is scored",
    "lth_tf.pruning.strategies.grasp": "the gradients load TensorFlow: only when a mask is scored",
    "lth_tf.pruning.strategies.synflow": "the gradients load TensorFlow: only when a mask is scored",
    # Keras 3 on JAX runs `lth find` without TensorFlow (tests/on_jax/test_on_jax.py):
    "lth_tf.mechanism": "an implementation is imported with its library (tf_keras's with TensorFlow)",
    "lth_tf.training": "the TensorFlow training loop only where TensorFlow trains",
    "lth_tf.training.engines": "on JAX no engine is probed in a TensorFlow graph",
    "lth_tf.distribute": "on JAX the strategy needs no TensorFlow",
    "lth_tf.training.schedules": "the TensorFlow rate only where TensorFlow trains",
    "lth_tf.mechanism.keras3": "Keras 3 only where a Keras 3 model exists; on JAX its seeds "
                               "without TensorFlow's",
}
# Each command loads what it runs when it runs, so that `lth --help`, `lth report` and the other
# commands start no TensorFlow they do not use.
LAZY.update({f"lth_tf.commands.{name}": "a command loads its own modules when it runs"
             for name in ("data", "export", "find", "masks", "report", "stability", "tickets",
                          "transfer", "tune")})


def _modules():
  for directory, _, names in os.walk(ROOT):
    for name in names:
      if name.endswith(".py"):
        path = os.path.join(directory, name)
        parts = os.path.relpath(path, os.path.dirname(ROOT))[:-3].split(os.sep)
        if parts[-1] == "__init__":
          parts = parts[:-1]
        yield ".".join(parts), path


MODULES = dict(_modules())


def _resolve(module: str, node: ast.AST, package: str):
  """The lth_tf modules a top-level import statement loads (a name imported from a package
  may be a submodule)."""
  if isinstance(node, ast.Import):
    return [a.name for a in node.names if a.name.startswith("lth_tf")]
  base = node.module or ""
  if node.level:
    base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + [base]).strip(".")
  if not base.startswith("lth_tf"):
    return []
  out = [base]
  for alias in node.names:
    if f"{base}.{alias.name}" in MODULES:
      out.append(f"{base}.{alias.name}")
  return out


def _graph():
  graph, lazy = {}, {}
  for module, path in MODULES.items():
    tree = ast.parse(open(path, encoding="utf-8").read())
    package = module if path.endswith("__init__.py") else module.rsplit(".", 1)[0]
    edges = set()
    for node in tree.body:
      if isinstance(node, (ast.Import, ast.ImportFrom)):
        edges.update(_resolve(module, node, package))
      elif isinstance(node, ast.If):  # `if __name__ == "__main__"` blocks hold no imports here
        continue
    # Loading a module loads its parent packages first.
    parts = module.split(".")
    edges.update(".".join(parts[:i]) for i in range(1, len(parts)))
    graph[module] = {e for e in edges if e in MODULES and e != module}
    inner = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
             and n not in tree.body and any(m.startswith("lth_tf") for m in _resolve(module, n, package))]
    if inner:
      lazy[module] = inner
  return graph, lazy


def _cycle(graph):
  state, stack = {}, []

  def visit(node):
    state[node] = "open"
    stack.append(node)
    for child in sorted(graph[node]):
      # A package's __init__ importing its own submodules is how packages load, not a cycle.
      if child.startswith(node + "."):
        continue
      if state.get(child) == "open":
        return stack[stack.index(child):] + [child]
      if child not in state:
        found = visit(child)
        if found:
          return found
    stack.pop()
    state[node] = "done"
    return None

  for node in sorted(graph):
    if node not in state:
      found = visit(node)
      if found:
        return found
  return None


def test_the_import_graph_has_no_cycle():
  graph, _ = _graph()
  assert len(graph) > 50
  assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_cycle_check_finds_a_cycle():
  assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
  assert _cycle({"p": {"p.x"}, "p.x": {"p"}}) is None  # a package and its submodule


def test_function_level_imports_only_where_a_reason_is_given():
  _, lazy = _graph()
  assert set(lazy) <= set(LAZY), sorted(set(lazy) - set(LAZY))


def test_the_entry_points_are_the_packages_own_attributes_loaded_on_first_use():
  """`lth_tf.find(...)`, as the API's docstring writes it, is `lth_tf.api.find`, loaded on first
  use (that `import lth_tf` starts no TensorFlow: tests/report/test_report.py); an unknown name
  is an AttributeError."""
  import launcher  # pylint: disable=import-outside-toplevel
  code = ("import lth_tf\n"
          "assert 'lth_tf.api' not in __import__('sys').modules\n"
          "from lth_tf import api, keras_fit, tickets\n"
          "assert lth_tf.find is api.find and lth_tf.train is api.train\n"
          "assert lth_tf.TicketSearch is keras_fit.TicketSearch\n"
          "assert lth_tf.load_ticket is tickets.load\n"
          "assert 'find' in dir(lth_tf)\n"
          "try:\n"
          "  lth_tf.nothing\n"
          "except AttributeError:\n"
          "  pass\n"
          "else:\n"
          "  raise SystemExit('no AttributeError')\n")
  result = launcher.run([sys.executable, "-c", code], capture_output=True, text=True,
                        cwd=os.path.dirname(ROOT))
  assert result.returncode == 0, result.stderr[-2000:]


# ---- the mechanism seam ---------------------------------------------------------------------------

# Where tfmot and the private names of tf_keras and its optimizers may be read: the mechanism
# (`lth_tf.mechanism`) and the module that imports the libraries.
SEAM = ("lth_tf.mechanism", "lth_tf.compat")
# The private attributes of tf_keras layers, models and optimizers, and of tfmot's wrapper and
# registry, that the tf_keras mechanism reads; and those of Keras 3 that the keras3 mechanism
# reads (a variable's backend variable, a tensor's history).
PRIVATE = {"_index_dict", "_var_key", "_flatten_layers", "_network_nodes", "_output_layers",
           "_inbound_nodes", "_name", "_LAYERS_WEIGHTS_MAP", "_momentums", "momentums",
           "_velocities", "_velocity_hats", "_average_gradients", "pruning_vars",
           "_value", "_keras_history", "parent_nodes"}


def _seam_breaches(source: str):
  """What `source` reads outside the seam: tfmot (imported, or the `tfmot` name) and the private
  attributes of `PRIVATE`."""
  out = []
  for node in ast.walk(ast.parse(source)):
    if isinstance(node, ast.Import):
      out += [a.name for a in node.names if a.name.startswith("tensorflow_model_optimization")]
    elif isinstance(node, ast.ImportFrom):
      if (node.module or "").startswith("tensorflow_model_optimization"):
        out.append(node.module)
      out += [f"{node.module}.{a.name}" for a in node.names
              if a.name in ("tfmot", "prune_registry", "pruning_wrapper")]
    elif isinstance(node, ast.Attribute) and node.attr in PRIVATE:
      out.append(f".{node.attr} (line {node.lineno})")
    elif isinstance(node, ast.Name) and node.id == "tfmot":
      out.append(f"tfmot (line {node.lineno})")
  return out


def test_no_module_outside_the_mechanism_reads_tfmot_or_private_keras_names():
  breaches = {module: _seam_breaches(open(path, encoding="utf-8").read())
              for module, path in MODULES.items() if not module.startswith(SEAM)}
  assert {m: b for m, b in breaches.items() if b} == {}
  inside = _seam_breaches(open(MODULES["lth_tf.mechanism.tf_keras"], encoding="utf-8").read())
  assert len(inside) > 10  # the check sees what the mechanism reads
  assert len(_seam_breaches(open(MODULES["lth_tf.mechanism.keras3"], encoding="utf-8").read())) >= 4


def test_the_seam_check_sees_each_kind_of_breach():
  assert _seam_breaches("import tensorflow_model_optimization as t") == [
      "tensorflow_model_optimization"]
  assert _seam_breaches("from lth_tf.compat import keras, tfmot") == ["lth_tf.compat.tfmot"]
  assert _seam_breaches("x = optimizer._index_dict[k]") == ["._index_dict (line 1)"]
  assert _seam_breaches("for w, m, t in layer.pruning_vars: pass") == [".pruning_vars (line 1)"]
  assert _seam_breaches("y = keras.layers.Dense(3)") == []
