"""The default executor: every task in this process, one after another, in graph order."""
from lth_tf.executors import EXECUTORS


@EXECUTORS.register("local")
def run(work, graph) -> None:
  for task, _ in graph:
    work.run(task)
