"""TFLite sparse weight encodings: reading them back, and the compact element-wise encoding.

TFLite stores a sparse constant as values plus per-dimension metadata (`dense` or `CSR`, with
segment and index vectors of uint8/uint16/int32). The converter's sparsity pass chooses, per
weight, between two encodings:
- element-wise CSR (one index per non-zero) followed by a `DENSIFY` op that expands the weight
  once, when the interpreter first runs the graph: smallest file, dense speed afterwards;
- 1x4 blocks consumed directly by the sparse `FULLY_CONNECTED` kernel (every block with at least
  one non-zero is stored whole, with one index per block), chosen when the block sparsity is at
  least 90% of the element sparsity: faster at very low density, but a magnitude-pruned matrix
  at a few percent density stores most of its blocks' zeros, so the file is larger.

`compact` rewrites every block-encoded weight into the element-wise CSR + `DENSIFY` form, so the
file holds one value and one index per kept weight. `kernel_nonzeros` decodes the weights of the
model's matrix and convolution ops (sparse or dense, through `DENSIFY`) and counts non-zeros,
which is how export checks that a TFLite file keeps exactly the mask's weights.
"""
from typing import Dict, List, Optional

import numpy as np

from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.tools import flatbuffer_utils

_DTYPES = {
    schema.TensorType.FLOAT32: np.float32,
    schema.TensorType.FLOAT16: np.float16,
    schema.TensorType.INT8: np.int8,
    schema.TensorType.UINT8: np.uint8,
    schema.TensorType.INT32: np.int32,
}
_INDEX_VECTORS = [  # (largest value it holds, vector type, table class, numpy dtype)
    (np.iinfo(np.uint8).max, schema.SparseIndexVector.Uint8Vector, schema.Uint8VectorT, np.uint8),
    (np.iinfo(np.uint16).max, schema.SparseIndexVector.Uint16Vector, schema.Uint16VectorT, np.uint16),
    (np.iinfo(np.int32).max, schema.SparseIndexVector.Int32Vector, schema.Int32VectorT, np.int32),
]
# Ops whose weight (input 1) is a kernel of a prunable layer.
_KERNEL_OPS = {schema.BuiltinOperator.FULLY_CONNECTED, schema.BuiltinOperator.CONV_2D,
               schema.BuiltinOperator.DEPTHWISE_CONV_2D}


class UnsupportedSparsity(ValueError):
  """A sparse tensor layout this module does not decode."""


def _index_vector(vector) -> np.ndarray:
  return np.asarray(vector.values, dtype=np.int64)


def _tensor_values(model, tensor) -> np.ndarray:
  if tensor.type not in _DTYPES:
    raise UnsupportedSparsity(f"tensor type {tensor.type}")
  data = model.buffers[tensor.buffer].data
  if data is None:
    return np.zeros([0], _DTYPES[tensor.type])
  return np.frombuffer(np.asarray(data, np.uint8).tobytes(), dtype=_DTYPES[tensor.type])


def _concat_ranges(starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
  counts = stops - starts
  offsets = np.repeat(stops - np.cumsum(counts), counts)
  return np.arange(counts.sum()) + offsets


def decode(model, tensor) -> np.ndarray:
  """The dense array of a constant tensor, in any TFLite sparse layout or none.

  Walks the stored dimensions in traversal order (dense: every position; CSR: the positions
  its segments and indices list) to the coordinates of every stored value, then folds block
  dimensions back into the tensor's own.
  """
  values = _tensor_values(model, tensor)
  shape = [int(d) for d in tensor.shape]
  sparsity = tensor.sparsity
  if sparsity is None:
    return values.reshape(shape)
  order = [int(v) for v in np.asarray(sparsity.traversalOrder)]
  blocks = [int(v) for v in np.asarray(sparsity.blockMap)] if sparsity.blockMap is not None else []
  dims = sparsity.dimMetadata
  rank = len(shape)
  if sorted(order) != list(range(rank + len(blocks))) or len(dims) != len(order):
    raise UnsupportedSparsity(f"traversal order {order} for shape {shape}")
  block_size = {blocks[j]: int(dims[order.index(rank + j)].denseSize) for j in range(len(blocks))}
  parents = np.zeros(1, np.int64)
  paths = np.zeros((1, 0), np.int64)
  for dim in dims:
    if dim.format == schema.DimensionType.DENSE:
      size = int(dim.denseSize)
      offsets = np.tile(np.arange(size), len(parents))
      paths = np.column_stack([np.repeat(paths, size, axis=0), offsets])
      parents = np.repeat(parents, size) * size + offsets
    elif dim.format == schema.DimensionType.SPARSE_CSR:
      segments, indices = _index_vector(dim.arraySegments), _index_vector(dim.arrayIndices)
      children = _concat_ranges(segments[parents], segments[parents + 1])
      paths = np.column_stack([np.repeat(paths, segments[parents + 1] - segments[parents], axis=0),
                               indices[children]])
      parents = children
    else:
      raise UnsupportedSparsity(f"dimension format {dim.format}")
  if len(paths) != len(values):
    raise UnsupportedSparsity("sparse metadata does not match the stored values")
  coords = []
  for d in range(rank):
    coord = paths[:, order.index(d)]
    if d in block_size:
      coord = coord * block_size[d] + paths[:, order.index(rank + blocks.index(d))]
    coords.append(coord)
  dense = np.zeros(shape, values.dtype)
  dense[tuple(coords)] = values
  return dense


def _index_table(values: np.ndarray):
  top = int(values.max()) if len(values) else 0
  for limit, kind, table_class, dtype in _INDEX_VECTORS:
    if top <= limit:
      table = table_class()
      table.values = values.astype(dtype)
      return kind, table
  raise UnsupportedSparsity(f"index {top} does not fit an int32 vector")


def _dim(fmt: int, size: int = 0, segments=None, indices=None):
  dim = schema.DimensionMetadataT()
  dim.format = fmt
  dim.denseSize = size
  if segments is not None:
    dim.arraySegmentsType, dim.arraySegments = _index_table(segments)
    dim.arrayIndicesType, dim.arrayIndices = _index_table(indices)
  return dim


def _row_width(cols: int, itemsize: int) -> int:
  """How wide the stored rows of a `cols`-wide weight are.

  One-byte weights (int8) are stored in rows of the widest divisor of `cols` up to 256, so
  that every index is one byte too: 16-bit indices would be two thirds of the stored bytes.
  Wider types keep their rows (16-bit indices are at most a third of the stored bytes there,
  and the extra `RESHAPE` would copy the weight at every invocation).
  """
  limit = np.iinfo(np.uint8).max + 1
  if cols <= limit or itemsize > 1:
    return cols
  return max(w for w in range(1, limit + 1) if cols % w == 0)


def csr_sparsity(dense: np.ndarray):
  """(SparsityParametersT, values) of a 2-D array: dense rows, CSR columns, row-major values."""
  rows, cols = np.nonzero(dense)
  segments = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=dense.shape[0]))])
  sparsity = schema.SparsityParametersT()
  sparsity.traversalOrder = np.array([0, 1], np.int32)
  sparsity.blockMap = np.array([], np.int32)
  sparsity.dimMetadata = [_dim(schema.DimensionType.DENSE, dense.shape[0]),
                          _dim(schema.DimensionType.SPARSE_CSR, 0, segments, cols)]
  return sparsity, dense[rows, cols]


def _opcode_index(model, builtin: int) -> int:
  for index, code in enumerate(model.operatorCodes):
    if max(code.builtinCode, code.deprecatedBuiltinCode) == builtin:
      return index
  code = schema.OperatorCodeT()
  code.builtinCode = builtin
  code.deprecatedBuiltinCode = min(builtin, schema.BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES)
  code.version = 1
  model.operatorCodes.append(code)
  return len(model.operatorCodes) - 1


def _add_tensor(model, subgraph, name: bytes, shape, type_, quantization=None, data=None) -> int:
  tensor = schema.TensorT()
  tensor.shape = np.array(shape, np.int32)
  tensor.type = type_
  tensor.name = name
  tensor.quantization = quantization
  tensor.buffer = 0
  if data is not None:
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)
    model.buffers.append(buffer)
    tensor.buffer = len(model.buffers) - 1
  subgraph.tensors.append(tensor)
  return len(subgraph.tensors) - 1


def _add_op(model, builtin: int, inputs, outputs):
  op = schema.OperatorT()
  op.opcodeIndex = _opcode_index(model, builtin)
  op.inputs = np.array(inputs, np.int32)
  op.outputs = np.array(outputs, np.int32)
  return op


def _index_bytes(sparsity) -> int:
  total = 0
  for dim in sparsity.dimMetadata:
    for vector in (dim.arraySegments, dim.arrayIndices):
      if vector is not None and vector.values is not None:
        total += np.asarray(vector.values).nbytes
  return total


def _compact_plan(model, tensor):
  """(stored array, its sparsity, its values) for `tensor`, or None when that is not smaller.

  The stored array is `[rows * cols / w, w]`, `w` from `_row_width`.
  """
  dense = decode(model, tensor)
  rows, cols = dense.shape
  stored = dense.reshape(rows * cols // _row_width(cols, dense.dtype.itemsize), -1)
  sparsity, values = csr_sparsity(stored)
  before = len(model.buffers[tensor.buffer].data) + _index_bytes(tensor.sparsity)
  after = values.nbytes + _index_bytes(sparsity)
  return (stored, sparsity, values) if after < before else None


def _compact_weight(model, subgraph, index: int, plan) -> List:
  """Stores sparse weight `index` as planned; returns the ops that rebuild its dense value.

  `DENSIFY` expands the stored array (once: its input is constant) and, when it was stored in
  narrower rows, `RESHAPE` restores `[rows, cols]`. The quantisation parameters move to the
  tensor the consumer reads; the stored one, read only by `DENSIFY`, carries none.
  """
  stored, sparsity, values = plan
  tensor = subgraph.tensors[index]
  rows, cols = (int(d) for d in tensor.shape)
  name = tensor.name or b"weight"
  quantization, tensor.quantization = tensor.quantization, None
  tensor.shape = np.array(stored.shape, np.int32)
  tensor.sparsity = sparsity
  model.buffers[tensor.buffer].data = np.frombuffer(values.tobytes(), np.uint8)
  if stored.shape[1] == cols:
    expanded = _add_tensor(model, subgraph, name + b"/densified", (rows, cols), tensor.type,
                           quantization)
    return [_add_op(model, schema.BuiltinOperator.DENSIFY, [index], [expanded])]
  flat = _add_tensor(model, subgraph, name + b"/densified", stored.shape, tensor.type)
  shape = _add_tensor(model, subgraph, name + b"/shape", (2,), schema.TensorType.INT32,
                      data=np.array([rows, cols], np.int32))
  expanded = _add_tensor(model, subgraph, name + b"/reshaped", (rows, cols), tensor.type,
                         quantization)
  return [_add_op(model, schema.BuiltinOperator.DENSIFY, [index], [flat]),
          _add_op(model, schema.BuiltinOperator.RESHAPE, [flat, shape], [expanded])]


def compact(model_bytes: bytes) -> bytes:
  """Stores every sparse 2-D weight in the smallest of its current and the element-wise form.

  The converter leaves some weights in its 1x4 block encoding (read directly by the sparse
  `FULLY_CONNECTED` kernel) and the others in element-wise CSR behind `DENSIFY`, with 16-bit
  indices wherever a row is wider than 255. A weight whose element-wise form
  (`_compact_plan`) is smaller is rewritten by `_compact_weight`, and its consumers read the
  rebuilt dense tensor; a weight whose kept entries fill whole blocks stays as it is.
  """
  model = flatbuffer_utils.convert_bytearray_to_object(bytearray(model_bytes))
  for subgraph in model.subgraphs:
    plans = {}
    for index, tensor in enumerate(subgraph.tensors):
      if tensor.sparsity is not None and len(tensor.shape) == 2:
        plan = _compact_plan(model, tensor)
        if plan is not None:
          plans[index] = plan
    densify_out = {int(op.outputs[0]): int(op.inputs[0]) for op in subgraph.operators
                   if _builtin(model, op) == schema.BuiltinOperator.DENSIFY
                   and int(op.inputs[0]) in plans}
    rebuilt: Dict[int, int] = {}  # stored tensor -> the dense tensor consumers read now
    operators: List = []
    for op in subgraph.operators:
      if int(op.outputs[0]) in densify_out and _builtin(model, op) == schema.BuiltinOperator.DENSIFY:
        continue  # replaced by the ops `_compact_weight` emits
      inputs = [int(i) for i in op.inputs]
      for slot, index in enumerate(inputs):
        source = densify_out.get(index, index)
        if source not in plans:
          continue
        if source not in rebuilt:
          ops = _compact_weight(model, subgraph, source, plans[source])
          operators.extend(ops)
          rebuilt[source] = int(ops[-1].outputs[0])
        inputs[slot] = rebuilt[source]
      op.inputs = np.array(inputs, np.int32)
      operators.append(op)
    subgraph.operators = operators
  for number, subgraph in enumerate(model.subgraphs):
    _drop_unused_tensors(model, number, subgraph)
  return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _drop_unused_tensors(model, number: int, subgraph) -> None:
  """Removes tensors no op, subgraph input/output or signature refers to (replaced weights)."""
  used = {int(i) for i in subgraph.inputs} | {int(i) for i in subgraph.outputs}
  for op in subgraph.operators:
    used |= {int(i) for i in op.inputs if i >= 0} | {int(i) for i in op.outputs}
  signatures = [sig for sig in (model.signatureDefs or []) if sig.subgraphIndex == number]
  for sig in signatures:
    used |= {int(m.tensorIndex) for m in list(sig.inputs or []) + list(sig.outputs or [])}
  new_index = {old: new for new, old in enumerate(sorted(used))}
  subgraph.tensors = [subgraph.tensors[old] for old in sorted(used)]

  def remap(indices):
    return np.array([new_index[int(i)] if i >= 0 else -1 for i in indices], np.int32)

  for op in subgraph.operators:
    op.inputs, op.outputs = remap(op.inputs), remap(op.outputs)
  subgraph.inputs, subgraph.outputs = remap(subgraph.inputs), remap(subgraph.outputs)
  for sig in signatures:
    for tensor_map in list(sig.inputs or []) + list(sig.outputs or []):
      tensor_map.tensorIndex = new_index[int(tensor_map.tensorIndex)]


def kernel_nonzeros(model_bytes: bytes) -> Dict[str, int]:
  """Non-zero entries of every kernel consumed by a matrix or convolution op, by tensor name."""
  model = flatbuffer_utils.convert_bytearray_to_object(bytearray(model_bytes))
  out = {}
  for subgraph in model.subgraphs:
    producers = {}
    for op in subgraph.operators:
      for output in op.outputs:
        producers[int(output)] = op
    for op in subgraph.operators:
      if _builtin(model, op) not in _KERNEL_OPS or len(op.inputs) < 2:
        continue
      index = _constant_source(model, subgraph, producers, int(op.inputs[1]))
      if index is None:
        continue
      tensor = subgraph.tensors[index]
      out[(tensor.name or b"").decode()] = int(np.count_nonzero(decode(model, tensor)))
  return out


def _builtin(model, op) -> int:
  code = model.operatorCodes[op.opcodeIndex]
  return max(code.builtinCode, code.deprecatedBuiltinCode)


def _constant_source(model, subgraph, producers, index: int) -> Optional[int]:
  """The constant tensor behind `index`, looking through DENSIFY, DEQUANTIZE and RESHAPE."""
  passthrough = {schema.BuiltinOperator.DENSIFY, schema.BuiltinOperator.DEQUANTIZE,
                 schema.BuiltinOperator.RESHAPE}
  while index in producers:
    op = producers[index]
    if _builtin(model, op) not in passthrough:
      return None
    index = int(op.inputs[0])
  tensor = subgraph.tensors[index]
  data = model.buffers[tensor.buffer].data
  return index if data is not None and len(data) else None
