"""Latency as a phone user sees it: the LiteRT interpreter with its default delegate (XNNPACK on
CPU), batch 1, several models timed interleaved so that a shared CPU slows them alike.

`interleaved` builds one interpreter per model, runs each `warmup` times (not timed), then
`runs` rounds, each timing one invocation of every model in turn, each round starting one model
later: with the dense model always first, every ticket came out 4-6% faster than it, even
those no runtime runs sparse; rotating brought them to 0.97-1.03x. It returns every model's
median in milliseconds. Comparing models by the ratio of their medians from one call is what
stays meaningful on cores other processes share.
"""
import statistics
import time
from typing import Dict, List, Optional

import numpy as np


def _interpreter(path: str, threads: int, image: np.ndarray, builtin_only: bool = False):
  from ai_edge_litert.interpreter import Interpreter, OpResolverType  # pylint: disable=import-outside-toplevel
  kwargs = {}
  if builtin_only:
    kwargs["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
  interpreter = Interpreter(model_path=path, num_threads=threads, **kwargs)
  interpreter.allocate_tensors()
  inp = interpreter.get_input_details()[0]
  interpreter.set_tensor(inp["index"], image[None].astype(inp["dtype"]))
  return interpreter


def interleaved(paths: List[str], image: np.ndarray, threads: int, runs: int = 200,
                warmup: int = 20, builtin_only: bool = False) -> Dict[str, Optional[float]]:
  """{path: median latency in ms}; None for a model the interpreter refuses."""
  interpreters = {}
  for path in paths:
    try:
      interpreter = _interpreter(path, threads, image, builtin_only)
      for _ in range(warmup):
        interpreter.invoke()
    except (RuntimeError, ValueError):
      continue
    interpreters[path] = interpreter
  times = {path: [] for path in interpreters}
  order = list(interpreters.items())
  for round_ in range(runs):
    # Each round starts one model later, so every model runs in every position equally often.
    shift = round_ % max(len(order), 1)
    for path, interpreter in order[shift:] + order[:shift]:
      start = time.perf_counter()
      interpreter.invoke()
      times[path].append(time.perf_counter() - start)
  return {path: (1000 * statistics.median(times[path]) if path in times else None)
          for path in paths}
