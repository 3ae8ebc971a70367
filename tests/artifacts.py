"""An experiment directory as one comparable value: what the tests compare two runs of the same
experiment with (a resumed run and an uninterrupted one, two executors)."""
import json
import os

from lth_tf import io


# Fields that differ between two runs of the same experiment, and why:
# - wall_time_s (a branch's metrics.json, and its sums in compute.json): time, not a result;
# - runtime.root_dir, runtime.data_dir (config.json): the directories the test chose;
# - a TensorBoard event file's name and event wall times: the clock, host and pid (its
#   scalars are compared).
VARIABLE = {"metrics.json": (("wall_time_s",),),
            "compute.json": (("total", "wall_time_s"), ("by_branch", "*", "wall_time_s")),
            "config.json": (("runtime", "root_dir"), ("runtime", "data_dir"))}


def without(data, paths):
  """`data` without the values at `paths` (tuples of keys; "*": every key at that depth)."""
  for path in paths:
    parents = [data]
    for key in path[:-1]:
      parents = [child for parent in parents if isinstance(parent, dict)
                 for child in (parent.values() if key == "*" else [parent.get(key, {})])]
    for parent in parents:
      if isinstance(parent, dict):
        parent.pop(path[-1], None)
  return data


def tensorboard_scalars(directory):
  from lth_tf.compat import tf
  (events,) = os.listdir(directory)  # one event file
  out = []
  for event in tf.compat.v1.train.summary_iterator(os.path.join(directory, events)):
    for value in event.summary.value:
      out.append((event.step, value.tag, tf.make_ndarray(value.tensor).tobytes()))
  return out


def of_experiment(root, variable=VARIABLE):
  """The one experiment directory under `root` as `of_directory` sees it."""
  (experiment,) = [p for p in root.iterdir() if p.is_dir()]
  return of_directory(experiment, variable)


def of_directory(experiment, variable=VARIABLE):
  """Every file of an experiment directory as a comparable value: arrays bit for bit, JSON whole
  but for `variable` (by file name: the key paths that vary), text exactly, TensorBoard
  scalars; the set of files is part of the value."""
  out = {}
  for path in sorted(experiment.rglob("*")):
    name = str(path.relative_to(experiment))
    if path.parent.name == "tensorboard":
      continue
    if path.name == "tensorboard":
      out[name] = tensorboard_scalars(path)
    elif path.suffix == ".npz":
      out[name] = {k: (v.dtype.str, v.shape, v.tobytes())
                   for k, v in io.read_arrays(str(path)).items()}
    elif path.suffix == ".json":
      out[name] = without(json.loads(path.read_text()), variable.get(path.name, ()))
    elif path.is_file():
      out[name] = path.read_bytes()
  return out
