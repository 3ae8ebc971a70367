"""Which layers of a TFLite model XNNPACK's sparse inference would read sparse, and why not.

The rules are XNNPACK's own (its subgraph rewrite for NCHW and the TFLite delegate), as read
from their source and checked here where this machine can check them:
- The delegate asks XNNPACK for sparse inference only when the delegated graph holds a weight
  expanded by `DENSIFY` from a constant sparse tensor (what the converter writes with
  `EXPERIMENTAL_SPARSITY`); XNNPACK then judges every cluster by the zeros of its weights.
- A sparse cluster starts at a 3x3 stride-2 `CONV_2D` on 3 input channels padded 1 on each side
  (NHWC to NCHW), contains only 1x1 stride-1 unpadded `CONV_2D`, 3x3 (pad 1) or 5x5 (pad 2)
  `DEPTHWISE_CONV_2D` of stride 1 or 2 and depth multiplier 1, 4-D `ADD`/`MUL` and 4-D unary
  ops, and ends at a spatial `MEAN` (NCHW to NHWC). No tensor inside may be read outside it.
  A zero `PAD` before a convolution becomes that convolution's padding. TensorFlow's 'same'
  padding becomes explicit padding only at stride 1; at stride 2 it stays 'same' (0 before, 1
  after at even sizes), which no cluster accepts.
- Only float (fp32, fp16) ops join a cluster: int8 never runs sparse.
- The cluster runs sparse only when more than 2/3 of its 1x1 convolutions' weights are zero;
  its 1x1 convolutions are then the layers read sparse (the entry and depthwise weights dense).
- On x86, XNNPACK turns its sparse kernels off whenever the CPU has AVX ("dense inference is
  expected to be faster"); they exist for ARM (phones) and x86 without AVX.
Fully connected layers have no sparse XNNPACK kernel; TFLite's built-in `FULLY_CONNECTED` reads
the converter's 1x4 (float) and 1x16 (int8) blocks, but not behind the default delegate.
N:M structured layers (`--pruning_strategy=nm`: N of every M consecutive input weights kept,
2:4 by default) have no kernel of their own either, in XNNPACK or the built-in kernels: the
converter stores them element-wise behind `DENSIFY` (a 1x4 block of a 2:4 layer is never empty,
so no block encoding pays) and they are judged by their zeros like any layer of that density.
A 2:4 layer (50% dense) is too dense for XNNPACK's sparse subgraph even where it has sparse
kernels.

`analyse` applies these rules to a model file and returns one row per weighted layer: whether
the rules let it run sparse on a CPU with XNNPACK's sparse kernels, whether it runs sparse on
this CPU, the first rule that keeps it dense, and its N:M structure if it has one.
"""
import dataclasses
import platform
from typing import Dict, List, Optional, Set, Tuple

import numpy as np

from lth_tf.export import tflite_sparse
from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.tools import flatbuffer_utils

OP = schema.BuiltinOperator
_NAMES = {value: key for key, value in vars(OP).items() if not key.startswith("_")}
# More than this fraction of a cluster's 1x1 weights must be zero.
MIN_ZERO_FRACTION = 2.0 / 3.0
_UNARY = {OP.RELU, OP.RELU6, OP.RELU_N1_TO_1, OP.LOGISTIC, OP.TANH, OP.HARD_SWISH, OP.ABS,
          OP.NEG, OP.SQUARE, OP.SQRT, OP.ELU, OP.LEAKY_RELU, OP.FLOOR, OP.CEIL, OP.ROUND}
_FLOAT = {schema.TensorType.FLOAT32, schema.TensorType.FLOAT16}
_WEIGHT_OPS = {OP.CONV_2D, OP.DEPTHWISE_CONV_2D, OP.FULLY_CONNECTED}
# Block lengths M an N:M structure is looked for in (the smallest that fits is reported), and
# the share of blocks that must hold exactly N (int8 rounds a few kept weights to zero).
NM_BLOCKS = (4, 8, 16)
NM_EXACT_SHARE = 0.9


@dataclasses.dataclass(frozen=True)
class LayerRow:
  """One weighted layer of a TFLite model and XNNPACK's verdict on it."""
  layer: str           # the weight tensor's name
  op: str              # CONV_2D, DEPTHWISE_CONV_2D or FULLY_CONNECTED
  kernel: str          # e.g. "1x1, 32->64"
  density: float       # non-zero fraction of its weights
  eligible: bool       # the rules let it run sparse where XNNPACK has sparse kernels
  runs_here: str       # "sparse" or "dense" on this CPU
  reason: str          # why (the first rule that keeps it dense), or what makes it sparse
  structure: str = ""  # "N:M" for an N:M structured kernel (`nm_structure`), else ""


def nm_structure(values: np.ndarray) -> str:
  """`N:M` when a kernel in TFLite's layout (inputs on the last axis: [out, in], [out, h, w,
  in]) holds at most N non-zeros in every block of M consecutive inputs and at least
  `NM_EXACT_SHARE` of its blocks hold exactly N, for the smallest M of `NM_BLOCKS` with
  N < M; "" otherwise (a dense or an unstructured sparse kernel)."""
  if values.ndim < 2:
    return ""
  for m in NM_BLOCKS:
    if values.shape[-1] % m:
      continue
    counts = np.count_nonzero(values.reshape(-1, m), axis=1)
    n = int(counts.max())
    if 0 < n < m and np.mean(counts == n) >= NM_EXACT_SHARE:
      return f"{n}:{m}"
  return ""


def sparse_kernels_here() -> Tuple[bool, str]:
  """Whether XNNPACK uses its sparse kernels on this CPU, and why not."""
  machine = platform.machine().lower()
  if machine not in ("x86_64", "amd64", "i386", "i686", "x86"):
    return True, f"{machine}: XNNPACK has sparse kernels"
  if _has_avx():
    return False, ("runtime: XNNPACK turns its sparse kernels off on x86 CPUs with AVX (this "
                   "CPU); they run on ARM phones")
  return True, "x86 without AVX: XNNPACK's SSE sparse kernels"


def _has_avx() -> bool:
  try:  # NumPy's own CPU feature detection
    from numpy._core._multiarray_umath import __cpu_features__  # pylint: disable=import-outside-toplevel
  except ImportError:  # pragma: no cover - older NumPy
    from numpy.core._multiarray_umath import __cpu_features__  # pylint: disable=import-outside-toplevel
  return bool(__cpu_features__.get("AVX", True))


@dataclasses.dataclass
class _Graph:
  model: object
  subgraph: object
  producers: Dict[int, int]
  consumers: Dict[int, List[int]]

  def op(self, index: int):
    return self.subgraph.operators[index]

  def code(self, index: int) -> int:
    return tflite_sparse._builtin(self.model, self.op(index))  # pylint: disable=protected-access

  def tensor(self, index: int):
    return self.subgraph.tensors[index]

  def is_constant(self, tensor_index: int) -> bool:
    """A weight: constant data, or computed from constants only (DENSIFY, DEQUANTIZE)."""
    if tensor_index in self.producers:
      op = self.op(self.producers[tensor_index])
      return all(self.is_constant(int(i)) for i in op.inputs if i >= 0)
    data = self.model.buffers[self.tensor(tensor_index).buffer].data
    return data is not None and len(data) > 0

  def dynamic_inputs(self, index: int) -> List[int]:
    return [int(i) for i in self.op(index).inputs if i >= 0 and not self.is_constant(int(i))]


def _graph(model_bytes: bytes) -> _Graph:
  model = flatbuffer_utils.convert_bytearray_to_object(bytearray(model_bytes))
  subgraph = model.subgraphs[0]
  producers, consumers = {}, {}
  for index, op in enumerate(subgraph.operators):
    for output in op.outputs:
      producers[int(output)] = index
    for tensor in op.inputs:
      consumers.setdefault(int(tensor), []).append(index)
  return _Graph(model, subgraph, producers, consumers)


def _padding(graph: _Graph, index: int) -> Optional[Tuple[int, int, int, int]]:
  """(top, bottom, left, right) of a convolution, a zero PAD before it folded in; None for
  TensorFlow 'same' padding at stride > 1 (not explicit)."""
  op = graph.op(index)
  options = op.builtinOptions
  weight = graph.tensor(int(op.inputs[1]))
  kh, kw = (int(weight.shape[1]), int(weight.shape[2]))
  if options.padding == schema.Padding.SAME:
    if options.strideH != 1 or options.strideW != 1:
      return None
    pad = ((kh - 1) // 2, kh - 1 - (kh - 1) // 2, (kw - 1) // 2, kw - 1 - (kw - 1) // 2)
  else:
    pad = (0, 0, 0, 0)
  source = graph.producers.get(int(op.inputs[0]))
  if source is not None and graph.code(source) == OP.PAD:
    paddings = tflite_sparse.decode(graph.model, graph.tensor(int(graph.op(source).inputs[1])))
    extra = (int(paddings[1][0]), int(paddings[1][1]), int(paddings[2][0]), int(paddings[2][1]))
    pad = tuple(a + b for a, b in zip(pad, extra))
  return pad


def _input_of(graph: _Graph, index: int) -> int:
  """The activation a convolution reads, looking through a PAD folded into it."""
  tensor = int(graph.op(index).inputs[0])
  source = graph.producers.get(tensor)
  if source is not None and graph.code(source) == OP.PAD:
    return int(graph.op(source).inputs[0])
  return tensor


def _role(graph: _Graph, index: int) -> Tuple[str, str]:
  """("entry" | "inside" | "exit" | "pad" | "", why not) of one op under XNNPACK's rules."""
  code = graph.code(index)
  op = graph.op(index)
  if code == OP.PAD:
    return "pad", ""
  outputs = [graph.tensor(int(t)) for t in op.outputs]
  if any(t.type not in _FLOAT for t in outputs):
    return "", "quantised: XNNPACK's sparse path is float only"
  if code == OP.CONV_2D:
    weight = graph.tensor(int(op.inputs[1]))
    out_c, kh, kw, in_c = (int(d) for d in weight.shape)
    pad = _padding(graph, index)
    stride = (op.builtinOptions.strideH, op.builtinOptions.strideW)
    dilation = (op.builtinOptions.dilationHFactor, op.builtinOptions.dilationWFactor)
    if dilation != (1, 1):
      return "", "graph shape: dilated convolution"
    if (kh, kw) == (1, 1):
      if stride != (1, 1) or pad != (0, 0, 0, 0):
        return "", "graph shape: a 1x1 convolution with stride or padding"
      return "inside", ""
    if (kh, kw) == (3, 3) and stride == (2, 2) and in_c == 3:
      if pad is None:
        return "", ("graph shape: 3x3 stride-2 convolution with TensorFlow 'same' padding (0 "
                    "before, 1 after); the sparse subgraph's entry needs 1 on each side "
                    "(ZeroPadding2D(1) + 'valid')")
      if pad != (1, 1, 1, 1):
        return "", f"graph shape: entry convolution padded {pad}, needs 1 on each side"
      return "entry", ""
    return "", "layer type: only 1x1 convolutions (and a 3x3 stride-2 entry) join a sparse subgraph"
  if code == OP.DEPTHWISE_CONV_2D:
    weight = graph.tensor(int(op.inputs[1]))
    kh, kw = int(weight.shape[1]), int(weight.shape[2])
    options = op.builtinOptions
    pad = _padding(graph, index)
    if (options.strideH, options.strideW) not in ((1, 1), (2, 2)) or options.depthMultiplier > 1:
      return "", "graph shape: depthwise stride or depth multiplier"
    half = {3: 1, 5: 2}.get(kh) if kh == kw else None
    if half is None:
      return "", "graph shape: depthwise kernel other than 3x3 or 5x5"
    if pad is None:
      return "", ("graph shape: stride-2 depthwise convolution with TensorFlow 'same' padding; "
                  f"needs {half} on each side")
    if pad != (half,) * 4:
      return "", f"graph shape: depthwise convolution padded {pad}, needs {half} on each side"
    return "inside", ""
  if code == OP.MEAN:
    return "exit", ""
  if code in (OP.ADD, OP.MUL) or code in _UNARY:
    if all(len(t.shape) == 4 for t in outputs):
      return "inside", ""
    return "", f"graph shape: {_NAMES.get(code, code)} on a tensor that is not 4-D"
  return "", f"graph shape: {_NAMES.get(code, code)} is not allowed in a sparse subgraph"


def _clusters(graph: _Graph) -> Tuple[Dict[int, int], Dict[int, str]]:
  """(op -> entry op of its cluster, entry op -> why that cluster is invalid).

  A cluster grows from an entry through the ops its tensors feed; a tensor read by an op that
  cannot join (or that is a model output) makes it invalid, so a valid cluster ends only at
  spatial MEANs."""
  roles = {i: _role(graph, i) for i in range(len(graph.subgraph.operators))}
  graph_outputs = {int(t) for t in graph.subgraph.outputs}
  member: Dict[int, int] = {}
  invalid: Dict[int, str] = {}
  for entry in (i for i, (role, _) in roles.items() if role == "entry"):
    cluster: Set[int] = {entry}
    frontier = [entry]
    problem = ""
    while frontier:
      node = frontier.pop()
      if roles[node][0] == "exit":
        continue
      for output in graph.op(node).outputs:
        if int(output) in graph_outputs:
          problem = problem or "graph shape: a tensor inside the subgraph is a model output"
        for consumer in graph.consumers.get(int(output), []):
          role, why = roles[consumer]
          if role == "pad":  # folded into the convolution it feeds
            nxt = graph.consumers.get(int(graph.op(consumer).outputs[0]), [])
            if all(roles[c][0] in ("inside", "exit") for c in nxt):
              for c in nxt:
                if c not in cluster:
                  cluster.add(c)
                  frontier.append(c)
              continue
            problem = problem or "graph shape: a PAD that feeds no convolution"
          elif role in ("inside", "exit"):
            if consumer not in cluster:
              cluster.add(consumer)
              frontier.append(consumer)
          else:
            problem = problem or f"{why} (read inside the subgraph)"
    for node in cluster:
      if node == entry:
        continue
      for tensor in graph.dynamic_inputs(node):
        source = graph.producers.get(tensor)
        if source is not None and graph.code(source) == OP.PAD:
          source = graph.producers.get(int(graph.op(source).inputs[0]))
        if source is None or source not in cluster:
          problem = problem or "graph shape: an op inside the subgraph reads a tensor from outside it"
    if problem:
      invalid[entry] = problem
    for node in cluster:
      member.setdefault(node, entry)
  return member, invalid


def _has_densified_weight(graph: _Graph) -> bool:
  return any(graph.code(i) == OP.DENSIFY for i in range(len(graph.subgraph.operators)))


def _kernel(graph: _Graph, index: int) -> Tuple[str, str, np.ndarray]:
  """(weight tensor name, kernel description, dense weight values) of a weighted op."""
  op = graph.op(index)
  producer_ops = {tensor: graph.op(i) for tensor, i in graph.producers.items()}
  weight_index = tflite_sparse._constant_source(  # pylint: disable=protected-access
      graph.model, graph.subgraph, producer_ops, int(op.inputs[1]))
  weight = graph.tensor(int(op.inputs[1]))
  values = (tflite_sparse.decode(graph.model, graph.tensor(weight_index))
            if weight_index is not None else np.ones(1))
  shape = [int(d) for d in weight.shape]
  if values.size == int(np.prod(shape)):  # the op's layout (compact int8 re-rows its source)
    values = values.reshape(shape)
  if graph.code(index) == OP.FULLY_CONNECTED:
    text = f"{shape[1]}->{shape[0]}"
  elif graph.code(index) == OP.DEPTHWISE_CONV_2D:
    text = f"{shape[1]}x{shape[2]} depthwise, {shape[3]} channels"
  else:
    text = f"{shape[1]}x{shape[2]}, {shape[3]}->{shape[0]}"
  name = graph.tensor(weight_index if weight_index is not None else int(op.inputs[1])).name
  return (name or b"").decode(), text, values


def analyse(model_bytes: bytes) -> List[LayerRow]:
  """One row per weighted op of the model's main graph, in graph order (see the module doc)."""
  graph = _graph(model_bytes)
  member, invalid = _clusters(graph)
  hint = _has_densified_weight(graph)
  here, runtime_why = sparse_kernels_here()
  kernels = {}
  for index in range(len(graph.subgraph.operators)):
    if graph.code(index) in _WEIGHT_OPS:
      kernels[index] = _kernel(graph, index)
  zero_fraction = {}
  for entry in set(member.values()):
    pointwise = [kernels[i][2] for i, e in member.items()
                 if e == entry and i in kernels and graph.code(i) == OP.CONV_2D and i != entry]
    total = sum(w.size for w in pointwise)
    zero_fraction[entry] = (sum(w.size - np.count_nonzero(w) for w in pointwise) / total
                            if total else 0.0)
  rows = []
  for index, (name, text, values) in kernels.items():
    code = graph.code(index)
    density = float(np.count_nonzero(values) / max(values.size, 1))
    role, why = _role(graph, index)
    entry = member.get(index)
    eligible = False
    if code == OP.FULLY_CONNECTED:
      why = why if why.startswith("quantised") else ("layer type: XNNPACK has no sparse fully connected kernel (the built-in "
                    "kernel's 1x4 blocks run only without the default delegate)")
    elif code == OP.DEPTHWISE_CONV_2D:
      why = why or "layer type: depthwise weights are read dense (even inside a sparse subgraph)"
    elif role == "entry":
      why = invalid.get(index) or "layer type: the sparse subgraph's entry reads dense weights"
    elif why:
      pass
    elif entry is None:
      why = ("graph shape: no sparse subgraph reaches it (none starts at a 3x3 stride-2 "
             "convolution on 3 channels padded 1 on each side)")
    elif entry in invalid:
      why = invalid[entry]
    elif not hint:
      why = "storage: no weight is stored sparse behind DENSIFY, so the delegate asks for no sparse inference"
    elif zero_fraction[entry] <= MIN_ZERO_FRACTION:
      why = (f"density too high: {100 * (1 - zero_fraction[entry]):.1f}% of the subgraph's 1x1 "
             f"weights are non-zero; sparse needs under {100 * (1 - MIN_ZERO_FRACTION):.1f}%")
    else:
      eligible = True
      why = (f"1x1 convolution in a sparse subgraph ({100 * (1 - zero_fraction[entry]):.1f}% of "
             "its 1x1 weights non-zero)")
    runs_sparse = eligible and here
    if eligible and not here:
      why = f"{runtime_why}; by the rules it would run sparse: {why}"
    structure = nm_structure(values) if code != OP.DEPTHWISE_CONV_2D else ""
    if structure:
      why = (f"{structure} structured: no LiteRT CPU kernel (XNNPACK or built-in) reads N:M "
             f"sparsity, the layer is judged by its zeros as any {100 * density:.1f}% layer; "
             f"{why}")
    rows.append(LayerRow(name, _NAMES.get(code, str(code)), text, density, eligible,
                         "sparse" if runs_sparse else "dense", why, structure))
  return rows


def table(rows: List[LayerRow]) -> str:
  """Markdown: one row per layer."""
  lines = ["| layer | op | kernel | density | sparse where XNNPACK has sparse kernels | "
           "runs here | why |", "|---|---|---|---|---|---|---|"]
  for row in rows:
    lines.append(f"| {row.layer} | {row.op} | {row.kernel} | {100 * row.density:.1f}% | "
                 f"{'yes' if row.eligible else 'no'} | {row.runs_here} | {row.reason} |")
  return "\n".join(lines)
