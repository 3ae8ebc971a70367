"""Masked-training speed, side by side: stock tfmot, dense tf_keras, lth_tf, a PyTorch loop.

    PYTHONPATH=. .venv/bin/python benchmarks/speed.py --data_dir=data --out=benchmarks/speed

By default it times what a user compares (`--contenders=a,b,d,o,q,p`): stock tfmot (a), dense
`model.fit` (b), the PyTorch loop on one and two threads (d, o), lth_tf as `lth find` trains with
no runtime flags (q: the engine `--engine=auto` chooses on this machine) and the floor (p). The
other letters are the engine variants of earlier records, kept so that they can be re-run.

Contenders (each in its own worker process, so that thread pools and memory do not mix; the
main process alternates them round by round, rotating their order, and reports medians):
  a  stock tfmot: `prune_low_magnitude` (ConstantSparsity at the density, mask update every
     100 steps) + `UpdatePruningStep`, `model.fit` on a shuffled, batched `tf.data` pipeline,
     timed from the end of the first step to the end of the last (the per-call start of the
     pipeline is left out; `with_start_s_per_1000` in the JSON keeps it);
  b  dense tf_keras `model.fit`, no pruning, the same pipeline;
  c  lth_tf as `lth find` trains a branch: the `ReplicateModel` of the runner, `load_state`
     with the mask, `Trainer.fit` with evaluation of the validation and test sets every
     `--eval_every` iterations. Evaluation calls are timed apart; the figure per 1,000 steps
     is training time + (1000 / eval_every) evaluations, and the evaluation share is reported;
  d  a PyTorch eager loop (optional: needs torch) that re-applies the masks after every
     optimizer step, as open_lth does; data in memory, a fresh permutation per epoch;
  f  c with `--fused_optimizer` (TensorFlow's fused optimizer kernels);
  g  c with `--mixed_precision=mixed_bfloat16` (16-bit compute, float32 weights and masks; on
     CPUs with AVX512-BF16 or AMX, oneDNN's bfloat16 convolutions and matrix products);
  h  a under the same `mixed_bfloat16` policy: g's like-for-like baseline;
  i  f with `--intra_op_threads=1` (one thread per TensorFlow operation);
  m  f with `--mixed_precision=mixed_bfloat16`: the fused kernels and 16-bit compute together;
  n  lth_tf with `--dense_shards=2` (fused kernels, the large fully connected kernels split by
     columns into two blocks that run at the same time, one thread per operation): one run's
     step on both cores;
  o  d with 2 torch threads: the PyTorch loop on both cores as well, n's like-for-like control;
  q  lth_tf's default: c with the engine `lth find` chooses when no runtime flag is given
     (`lth_tf.training.engines`; on two or more cores for LeNet-300-100 that is n's, for
     Conv-4 f's), threads as that engine sets them;
  r  q on the registered model built in Keras 3 (`--framework=keras3`, the TensorFlow
     backend): the engine `lth find` chooses for it, its weights masked at their variables;
  j  r on Keras 3's JAX backend (KERAS_BACKEND=jax, the `jax` extra): the JAX trainer
     (`lth_tf.training.jax_trainer`, one jitted function per chunk), JAX's default CPU threads;
  p  the floor: only the matrix products and convolutions of a training step (forward; weight
     gradients; input gradients except the first layer's) and of c's evaluations, in one graph
     loop over the same in-memory batches, the large fully connected kernels split as n splits
     them with one thread per operation (LeNet) or unsplit with TensorFlow's threads (Conv-4).
     Each backward product takes its layer's forward output as a stand-in for the gradient
     arriving there and runs in the backward pass's order (after the input-gradient products
     of the layer above): what the step's arithmetic costs on this machine, without the
     optimizer update, the element-wise operations and the loss; the yardstick for whether a
     target is reachable at all.

Models: LeNet-300-100 on Fashion-MNIST and Conv-4 on CIFAR-10, batch 60, Adam, at 100% and at
about 7% weights remaining (the layerwise IMP level closest to 7%). Writes `OUT.json` (raw
timings, medians, ratios, targets) and `OUT.md` (the table), and prints the table.

`--whole` also times whole commands in subprocesses (peak resident memory of the process tree
from the operating system's child accounting): the README demo (`lth find
--flagfile=flags/demo.flags`) and one IMP level of the paper's LeNet schedule.
`--imp` times a whole IMP job, the paper's LeNet-300-100 preset shortened to `--imp_iterations`
per training with `--imp_levels` levels and the re-init control, whole commands start-up
included: `lth find` with no runtime flags and `benchmarks/bare_imp.py` (the same arithmetic and
evaluations in a bare TensorFlow loop), and with `--imp_manual` also `lth find --engine=manual`
(the engine of earlier records), alternated for `--imp_rounds` rounds.
(Replicates trained at the same time: benchmarks/executors.py.)
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MODELS = {
    "lenet": {"model": "lenet300_100", "dataset": "fashion_mnist", "learning_rate": 1.2e-3},
    "conv4": {"model": "conv4", "dataset": "cifar10", "learning_rate": 3e-4},
}
# The letters e, j, k and l were batched-variant contenders of records made before 2026-12-02;
# `--batch_variants` is retired, and so are they.
CONTENDERS = ("a", "b", "c", "d", "f", "g", "h", "i", "j", "m", "n", "o", "p", "q", "r")
DEFAULT_CONTENDERS = ("a", "b", "d", "o", "q", "p")  # what a user compares
SINGLE = ("c", "f", "g", "i", "j", "m", "n", "q", "r")  # lth_tf's one-run contenders
LABELS = {
    "a": "tfmot prune_low_magnitude + model.fit",
    "b": "tf_keras model.fit, dense",
    "c": "lth_tf (lth find path, eval incl.)",
    "d": "PyTorch eager, masks re-applied",
    "f": "lth_tf, --fused_optimizer",
    "g": "lth_tf, --mixed_precision=mixed_bfloat16",
    "h": "tfmot + model.fit, mixed_bfloat16 policy",
    "i": "lth_tf, --fused_optimizer --intra_op_threads=1",
    "m": "lth_tf, --fused_optimizer --mixed_precision=mixed_bfloat16",
    "n": "lth_tf, --dense_shards=2",
    "o": "PyTorch eager, masks re-applied, 2 threads",
    "p": "floor: the step's and evaluations' products alone",
    "q": "lth_tf default (no runtime flags)",
    "r": "lth_tf default, the model in Keras 3",
    "j": "lth_tf, the model in Keras 3 on JAX",
}
# Contenders whose model is built in Keras 3 (`ModelConfig.framework`).
KERAS3 = ("r", "j")
# Contenders that run on Keras 3's JAX backend (their worker has KERAS_BACKEND=jax).
ON_JAX = ("j",)
# Thread pool sizes (intra-op, inter-op) of a contender's worker; absent: TensorFlow's defaults.
THREADS = {"i": (1, 0), "n": (1, 0)}
# The floor's kernel split and threads per model: as the fastest lth_tf contender runs it.
FLOOR_SHARDS = {"lenet": 2, "conv4": 1}
BFLOAT16 = "mixed_bfloat16"
BATCH = 60
ITERATIONS = 50000  # lth_tf contenders train the last `steps` iterations of a 50K schedule


# ---- worker side ----------------------------------------------------------------------------

def _level_masks(model, target=0.07, seed=0):
  """Random masks with the per-layer densities of the IMP level closest to `target` overall."""
  from lth_tf import pruning  # pylint: disable=import-outside-toplevel
  from lth_tf.config import PruningConfig  # pylint: disable=import-outside-toplevel
  from lth_tf.pruning.kinds import KINDS  # pylint: disable=import-outside-toplevel
  rates = PruningConfig()  # the paper's layerwise rates per round are its defaults
  shapes = pruning.prunable_shapes(model)
  kinds = pruning.layer_kinds(model)
  best = None
  for level in range(60):
    counts = {n: pruning.remaining_after(int(np.prod(s)), getattr(rates, KINDS[kinds[n]]), level)
              for n, s in shapes.items()}
    overall = sum(counts.values()) / sum(int(np.prod(s)) for s in shapes.values())
    if best is None or abs(overall - target) < abs(best[0] - target):
      best = (overall, counts)
  rng = np.random.default_rng(seed)
  masks = {}
  for name, shape in shapes.items():
    keep = np.zeros(int(np.prod(shape)), bool)
    keep[rng.permutation(keep.size)[:best[1][name]]] = True
    masks[name] = keep.reshape(shape)
  return pruning.Mask.from_dict(masks), best[0]


class _Timer:
  """Wraps an `evaluate` method: times it, or (when `skip`) returns the last result at once."""

  def __init__(self, function):
    self.function, self.seconds, self.calls, self.skip, self.cached = function, 0.0, 0, False, None

  def __call__(self):
    if self.skip and self.cached is not None:
      return self.cached
    started = time.perf_counter()
    self.cached = self.function()
    self.seconds += time.perf_counter() - started
    self.calls += 1
    return self.cached


class LthWorker:
  """Contenders c, f, g, i, j, m, n, q and r: one model as `lth find` trains a branch."""

  def __init__(self, spec, data, args, fused=False, precision="none", shards=1, runtime=None,
               framework=""):
    # pylint: disable=import-outside-toplevel
    from lth_tf import distribute
    from lth_tf.config import (DatasetConfig, ExperimentConfig, ModelConfig, RuntimeConfig,
                               TrainingConfig)
    from lth_tf.lottery.replicate import ReplicateModel
    self.config = ExperimentConfig(
        dataset=DatasetConfig(name=spec["dataset"]),
        model=ModelConfig(name=spec["model"], framework=framework),
        training=TrainingConfig(learning_rate=spec["learning_rate"], batch_size=BATCH,
                                iterations=ITERATIONS, eval_every=args.eval_every,
                                mixed_precision=precision),
        runtime=runtime or RuntimeConfig(progress=False, data_dir=args.data_dir,
                                         fused_optimizer=fused, dense_shards=shards))
    if self.config.runtime.deterministic:  # as `lth find` runs
      distribute.enable_determinism()
    self.replicate = ReplicateModel(self.config, data, 0,
                                    distribute.make_strategy(self.config.runtime))
    self.masks = {1.0: None, 0.07: _level_masks(self.replicate.model)[0]}
    self.trainer = self.replicate.trainer
    self.timer = _Timer(self.trainer.evaluate)
    self.trainer.evaluate = self.timer
    # Runs per density (the warm-up included) whose evaluations are real and timed.
    self.real_evals_left = {}
    self.eval_rounds = args.eval_rounds + 1
    self.eval_seconds = {}

  def run(self, density, steps):
    from lth_tf import pruning  # pylint: disable=import-outside-toplevel
    mask = self.masks[density]
    if mask is None:
      mask = pruning.Mask.ones_like(pruning.prunable_weights(self.replicate.model))
    self.replicate.load_state(self.replicate.initial_weights, mask, None)
    left = self.real_evals_left.setdefault(density, self.eval_rounds)
    self.timer.seconds, self.timer.calls = 0.0, 0
    self.timer.skip = left <= 0
    self.timer.cached = None if left > 0 else self.timer.cached
    started = time.perf_counter()
    self.trainer.fit(ITERATIONS - steps)
    total = time.perf_counter() - started
    if left > 0:
      self.eval_seconds[density] = self.timer.seconds / self.timer.calls
      self.real_evals_left[density] = left - 1
    evaluation = self.eval_seconds[density]
    training = total - self.timer.seconds
    evals_per_1000 = 1000 / self.config.training.eval_every
    return {"train_s_per_1000": training / steps * 1000, "eval_s": evaluation,
            "s_per_1000": training / steps * 1000 + evals_per_1000 * evaluation}


class KerasWorker:
  """Contenders a (tfmot) and b (dense model.fit)."""

  def __init__(self, spec, data, args, prune, precision="none"):
    from lth_tf import models, precision as precision_lib  # pylint: disable=import-outside-toplevel
    from lth_tf.compat import keras, tf, tfmot  # pylint: disable=import-outside-toplevel
    from lth_tf.config import ModelConfig  # pylint: disable=import-outside-toplevel
    self.tf, self.keras, self.tfmot = tf, keras, tfmot
    self.policy = lambda: precision_lib.policy(precision)
    self.build = lambda: models.build(ModelConfig(name=spec["model"]), data.input_shape,
                                      data.num_classes, 0)
    self.spec, self.prune = spec, prune
    self.dataset = (tf.data.Dataset.from_tensor_slices((data.x_train, data.y_train))
                    .shuffle(10000, seed=0).batch(BATCH, drop_remainder=True).repeat())
    self.models = {}

  def _model(self, density):
    if density not in self.models:
      with self.policy():  # the layers (and tfmot's clones of them) compute in the policy's dtype
        model = self.build()
        if self.prune:
          schedule = self.tfmot.sparsity.keras.ConstantSparsity(1.0 - density, begin_step=0,
                                                                 frequency=100)
          model = self.tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)
      model.compile(optimizer=self.keras.optimizers.Adam(self.spec["learning_rate"]),
                    loss=self.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
      self.models[density] = model
    return self.models[density]

  def run(self, density, steps):
    model = self._model(density)
    ends = []
    clock = self.keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: ends.append(time.perf_counter()))
    callbacks = [self.tfmot.sparsity.keras.UpdatePruningStep()] if self.prune else []
    started = time.perf_counter()
    model.fit(self.dataset, epochs=1, steps_per_epoch=steps, callbacks=callbacks + [clock],
              verbose=0)
    total = time.perf_counter() - started
    # Steady state: from the end of the first step to the end of the last, so that the
    # pipeline's start (filling the shuffle buffer) and fit's set-up, paid once per `fit` call,
    # are left out; `with_start` keeps them.
    return {"s_per_1000": (ends[-1] - ends[0]) / (len(ends) - 1) * 1000,
            "with_start_s_per_1000": total / steps * 1000}


class TorchWorker:
  """Contender d: open_lth-style eager PyTorch loop, masks re-applied after every step."""

  def __init__(self, spec, data, args, threads=0):
    # torch's optimizers import torch._dynamo, which imports the GPU compiler triton when it is
    # installed; importing triton into a process that has loaded TensorFlow crashes it (seen
    # with torch 2.14's wheel). The loop is eager on a CPU and never compiles: keep triton out.
    sys.modules.setdefault("triton", None)
    import torch  # pylint: disable=import-outside-toplevel
    from torch import nn  # pylint: disable=import-outside-toplevel
    torch.set_num_threads(threads or args.torch_threads)
    torch.manual_seed(0)
    self.torch = torch
    self.x = torch.from_numpy(np.array(np.transpose(data.x_train, (0, 3, 1, 2))))
    self.y = torch.from_numpy(data.y_train.astype(np.int64))
    channels, size = self.x.shape[1], self.x.shape[2]
    if spec["model"] == "lenet300_100":
      layers = [nn.Flatten(), nn.Linear(channels * size * size, 300), nn.ReLU(),
                nn.Linear(300, 100), nn.ReLU(), nn.Linear(100, data.num_classes)]
    else:
      layers = []
      width = channels
      for filters in (64, 128):
        layers += [nn.Conv2d(width, filters, 3, padding=1), nn.ReLU(),
                   nn.Conv2d(filters, filters, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        width = filters
      layers += [nn.Flatten(), nn.Linear(width * (size // 4) ** 2, 256), nn.ReLU(),
                 nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, data.num_classes)]
    self.model = nn.Sequential(*layers)
    self.loss = nn.CrossEntropyLoss()
    self.lr = spec["learning_rate"]
    self.position = 0
    self.order = torch.randperm(len(self.y))

  def run(self, density, steps):
    torch = self.torch
    prunable = [p for p in self.model.parameters() if p.dim() > 1]
    generator = np.random.default_rng(0)
    masks = [torch.from_numpy((generator.random(tuple(p.shape)) < density).astype(np.float32))
             for p in prunable]
    optimizer = torch.optim.Adam(self.model.parameters(), lr=self.lr)
    per_epoch = len(self.y) // BATCH
    started = time.perf_counter()
    for _ in range(steps):
      if self.position == per_epoch:
        self.order, self.position = torch.randperm(len(self.y)), 0
      index = self.order[self.position * BATCH:(self.position + 1) * BATCH]
      self.position += 1
      optimizer.zero_grad()
      loss = self.loss(self.model(self.x[index]), self.y[index])
      loss.backward()
      optimizer.step()
      with torch.no_grad():
        for parameter, mask in zip(prunable, masks):
          parameter.mul_(mask)
    return {"s_per_1000": (time.perf_counter() - started) / steps * 1000}


class FloorWorker:
  """Contender p: the products of c's training steps and evaluations, nothing else."""

  def __init__(self, spec, data, args):
    # pylint: disable=import-outside-toplevel
    from lth_tf import models
    from lth_tf.compat import keras, tf
    from lth_tf.config import ModelConfig, RuntimeConfig
    from lth_tf.training import sharded
    from lth_tf.training.loop import batch_indices
    self.tf, self.batch_indices = tf, batch_indices
    self.num_train, self.eval_every = len(data.y_train), args.eval_every
    self.position = 0
    model = models.build(ModelConfig(name=spec["model"]), data.input_shape, data.num_classes, 0)
    shards = FLOOR_SHARDS[args.model]
    self.layers = []  # (kind, layer, weights): weights are a Dense kernel's column blocks
    for layer in model.layers:
      if isinstance(layer, keras.layers.Dense):
        blocks = sharded.column_blocks(layer.kernel.shape, shards)
        self.layers.append(("dense", layer, [tf.Variable(layer.kernel[:, a:b]) for a, b in blocks]))
      elif isinstance(layer, keras.layers.Conv2D):
        self.layers.append(("conv", layer, [tf.Variable(layer.kernel)]))
      elif isinstance(layer, (keras.layers.MaxPooling2D, keras.layers.Flatten)):
        self.layers.append(("shape", layer, []))  # not a product, but the next one's input
    x_train = tf.constant(data.x_train)
    eval_x = tf.constant(np.concatenate([data.x_val, data.x_test]))
    eval_batch = RuntimeConfig().eval_batch_size

    def backward(kind, layer, weights, x, grads, first):
      """One layer's weight-gradient products and (unless `first`) input-gradient products."""
      products, inputs = [], []
      for w, grad in zip(weights, grads):
        if kind == "dense":
          products.append(tf.matmul(x, grad, transpose_a=True))
          if not first:
            inputs.append(tf.matmul(grad, w, transpose_b=True))
          continue
        strides, padding = (1,) + tuple(layer.strides) + (1,), layer.padding.upper()
        products.append(tf.compat.v1.nn.conv2d_backprop_filter(x, tf.shape(w), grad, strides, padding))
        if not first:
          inputs.append(tf.compat.v1.nn.conv2d_backprop_input(tf.shape(x), w, grad, strides, padding))
      return products, inputs

    def forward(x, with_backward):
      """The products of one forward pass (and of its backward pass); a scalar that uses them.

      The backward products run in the backward pass's order: each layer's wait for the
      input-gradient products of the layer after it."""
      saved = []
      for kind, layer, weights in self.layers:
        if kind == "shape":
          x = layer(x)
          continue
        out = ([tf.matmul(x, w) for w in weights] if kind == "dense" else
               [tf.nn.conv2d(x, weights[0], layer.strides, layer.padding.upper())])
        saved.append((kind, layer, weights, x, out))
        x = tf.concat(out, axis=-1) if len(out) > 1 else out[0]
      used = [tf.reshape(x, [-1])[0]]
      if with_backward:  # a layer's output stands in for the gradient arriving at it
        after = []
        for index in reversed(range(len(saved))):
          with tf.control_dependencies(after):
            products, after = backward(*saved[index], first=index == 0)
          used += [tf.reshape(p, [-1])[0] for p in products + after]  # keeps them computed
      return tf.add_n(used)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32), tf.TensorSpec([], tf.int32)])
    def train(indices, num_steps):
      total = tf.constant(0.0)
      for step in tf.range(num_steps):
        total += forward(tf.gather(x_train, indices[step * BATCH:(step + 1) * BATCH]), True)
      return total

    @tf.function
    def evaluate():
      total = tf.constant(0.0)
      for start in tf.range(0, tf.shape(eval_x)[0], eval_batch):
        total += forward(eval_x[start:start + eval_batch], False)
      return total

    self.train, self.evaluate = train, evaluate

  def run(self, density, steps):
    del density  # the products are the same at every density
    indices = self.batch_indices(self.num_train, BATCH, 0, self.position, self.position + steps)
    self.position += steps
    started = time.perf_counter()
    float(self.train(self.tf.constant(indices), self.tf.constant(steps, self.tf.int32)))
    training = time.perf_counter() - started
    started = time.perf_counter()
    float(self.evaluate())
    evaluation = time.perf_counter() - started
    return {"train_s_per_1000": training / steps * 1000, "eval_s": evaluation,
            "s_per_1000": training / steps * 1000 + 1000 / self.eval_every * evaluation}


WORKERS = {
    "a": lambda spec, data, args: KerasWorker(spec, data, args, prune=True),
    "b": lambda spec, data, args: KerasWorker(spec, data, args, prune=False),
    "c": lambda spec, data, args: LthWorker(spec, data, args),
    "d": TorchWorker,
    "f": lambda spec, data, args: LthWorker(spec, data, args, fused=True),
    "g": lambda spec, data, args: LthWorker(spec, data, args, precision=BFLOAT16),
    "h": lambda spec, data, args: KerasWorker(spec, data, args, prune=True, precision=BFLOAT16),
    "i": lambda spec, data, args: LthWorker(spec, data, args, fused=True),
    "m": lambda spec, data, args: LthWorker(spec, data, args, fused=True,
                                            precision=BFLOAT16),
    "n": lambda spec, data, args: LthWorker(spec, data, args, shards=2),
    "o": lambda spec, data, args: TorchWorker(spec, data, args, threads=2),
    "p": FloorWorker,
    "q": lambda spec, data, args: LthWorker(spec, data, args,
                                            runtime=args.default_runtime),
    "r": lambda spec, data, args: LthWorker(spec, data, args, runtime=args.default_runtime,
                                            framework="keras3"),
    "j": lambda spec, data, args: LthWorker(spec, data, args, framework="keras3"),
}


def default_runtime(spec, data, args, framework=""):
  """The runtime `lth find` uses with no runtime flags (contenders q, r), as it says at
  start-up."""
  from lth_tf.config import (DatasetConfig, ExperimentConfig, ModelConfig,  # pylint: disable=import-outside-toplevel
                             RuntimeConfig, TrainingConfig)
  from lth_tf.training import engines  # pylint: disable=import-outside-toplevel
  config = ExperimentConfig(
      dataset=DatasetConfig(name=spec["dataset"]),
      model=ModelConfig(name=spec["model"], framework=framework),
      training=TrainingConfig(learning_rate=spec["learning_rate"], batch_size=BATCH,
                              iterations=ITERATIONS, eval_every=args.eval_every),
      runtime=RuntimeConfig(progress=False, data_dir=args.data_dir))
  return engines.resolve(config, data.input_shape, data.num_classes, "", "",
                         lambda line: print(line, file=sys.stderr)).runtime


def worker_main(args) -> None:
  """Answers `{"density": D, "steps": N}` lines on stdin with one JSON line each."""
  sys.path.insert(0, REPO)
  from lth_tf import data as data_lib  # pylint: disable=import-outside-toplevel
  from lth_tf.config import DatasetConfig, RuntimeConfig  # pylint: disable=import-outside-toplevel
  threads = THREADS.get(args.worker)
  if args.worker == "p" and FLOOR_SHARDS[args.model] > 1:  # split as n, with n's threads
    threads = THREADS["n"]
  from lth_tf import distribute  # pylint: disable=import-outside-toplevel
  if threads:  # (TensorFlow's runtime and torch's in one process can crash)
    intra, inter = threads
    distribute.set_threads(RuntimeConfig(intra_op_threads=intra, inter_op_threads=inter))
  spec = MODELS[args.model]
  data = data_lib.load(DatasetConfig(name=spec["dataset"]), args.data_dir)
  if args.worker in ("q", "r"):  # the engine and threads `lth find` chooses, before TF starts
    args.default_runtime = default_runtime(spec, data, args,
                                           "keras3" if args.worker in KERAS3 else "")
    distribute.set_threads(args.default_runtime)
  worker = WORKERS[args.worker](spec, data, args)
  out = sys.stdout
  sys.stdout = sys.stderr  # keep library prints off the protocol channel
  out.write(json.dumps({"ready": True}) + "\n")
  out.flush()
  for line in sys.stdin:
    request = json.loads(line)
    result = worker.run(float(request["density"]), int(request["steps"]))
    out.write(json.dumps(result) + "\n")
    out.flush()


# ---- main side ------------------------------------------------------------------------------

class Worker:
  def __init__(self, contender, model, args):
    eval_rounds = args.eval_rounds if model == "lenet" else args.conv4_eval_rounds
    command = [sys.executable, os.path.abspath(__file__), f"--worker={contender}",
               f"--model={model}", f"--data_dir={args.data_dir}", f"--eval_every={args.eval_every}",
               f"--torch_threads={args.torch_threads}",
               f"--eval_rounds={eval_rounds if eval_rounds >= 0 else 10**6}"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    if contender in ON_JAX:
      env["KERAS_BACKEND"] = "jax"
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    text=True, env=env, cwd=REPO)
    self.contender = contender

  def wait_ready(self):
    line = self.process.stdout.readline()
    if not line:
      raise RuntimeError(f"worker {self.contender} failed to start")

  def run(self, density, steps):
    self.process.stdin.write(json.dumps({"density": density, "steps": steps}) + "\n")
    self.process.stdin.flush()
    line = self.process.stdout.readline()
    if not line:
      raise RuntimeError(f"worker {self.contender} died")
    return json.loads(line)

  def close(self):
    self.process.stdin.close()
    self.process.wait()


def _torch_available() -> bool:
  try:
    import torch  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    return True
  except ImportError:
    return False


def measure(args):
  results = {}
  for model in args.models:
    contenders = list(args.contenders)
    for torch_contender in ("d", "o"):
      if torch_contender in contenders and not _torch_available():
        print(f"torch is not installed: contender {torch_contender} skipped (pip install torch)",
              flush=True)
        contenders.remove(torch_contender)
    steps = args.lenet_steps if model == "lenet" else args.conv4_steps
    rounds = args.rounds if model == "lenet" else args.conv4_rounds
    workers = {c: Worker(c, model, args) for c in contenders}
    for worker in workers.values():
      worker.wait_ready()
    timings = {c: {str(d): [] for d in args.densities} for c in contenders}
    details = {c: {str(d): [] for d in args.densities} for c in contenders}
    for density in args.densities:  # warm-up: tracing, first-epoch effects
      for contender, worker in workers.items():
        worker.run(density, max(steps // 4, 10))
    for round_index in range(rounds):
      order = contenders[round_index % len(contenders):] + contenders[:round_index % len(contenders)]
      for density in args.densities:
        for contender in order:
          result = workers[contender].run(density, steps)
          timings[contender][str(density)].append(result["s_per_1000"])
          details[contender][str(density)].append(result)
          print(f"{model} round {round_index} density {density} {contender}: "
                f"{result['s_per_1000']:.3f} s / 1000 steps", flush=True)
    for worker in workers.values():
      worker.close()
    results[model] = {"steps_per_measurement": steps, "rounds": rounds, "timings": timings, "details": details,
                      "median": {c: {d: float(np.median(v)) for d, v in t.items()}
                                 for c, t in timings.items()}}
  return results


TARGETS = {
    # (model, name, contender x, contender y, least y/x): x is at least `least` times faster.
    "lenet": [("c >= 3x faster than a", "c", "a", 3.0), ("c >= 2x faster than o", "c", "o", 2.0),
              ("c faster than b", "c", "b", 1.0)],
    "conv4": [("c >= 1.5x faster than a", "c", "a", 1.5), ("c no slower than b", "c", "b", 1.0)],
}
# (model, most x/p): lth_tf's time at most `most` times the floor's (evaluation included).
FLOOR_TARGETS = {"lenet": 1.25, "conv4": 1.15}
# r / q: a step of the model built in Keras 3 at most this many times tf_keras's.
KERAS3_TARGET = 1.15


def table(results, args) -> str:
  lines = []
  for model, result in results.items():
    median = result["median"]
    spec = MODELS[model]
    lines.append(f"\n### {spec['model']} on {spec['dataset']}, batch {BATCH} "
                 f"({result['rounds']} rounds of {result['steps_per_measurement']} steps; "
                 "median seconds per 1,000 training steps)\n")
    header = "| contender | " + " | ".join(f"{100 * float(d):.0f}% weights" for d in args.densities)
    lines.append(header + " |")
    lines.append("|---" * (1 + len(args.densities)) + "|")
    for contender, by_density in median.items():
      label = LABELS[contender]
      lines.append(f"| ({contender}) {label} | " + " | ".join(
          f"{by_density[str(d)]:.3f}" for d in args.densities) + " |")
    if "c" in median:
      for contender in median:
        if contender == "c":
          continue
        ratio = " | ".join(f"{median[contender][str(d)] / median['c'][str(d)]:.2f}x"
                           for d in args.densities)
        lines.append(f"| ratio {contender}/c | {ratio} |")
      for contender in SINGLE:
        if contender not in median:
          continue
        details = result["details"][contender]
        share = " | ".join(
            f"{100 * np.median([r['s_per_1000'] - r['train_s_per_1000'] for r in details[str(d)]]) / median[contender][str(d)]:.1f}%"
            for d in args.densities)
        lines.append(f"| evaluation share of ({contender}), eval every {args.eval_every} | {share} |")
    lines.append("")
    for name, x, y, least in TARGETS.get(model, []):
      # The targets name (c); (f) and (g) are the same path with the fused kernels / bfloat16.
      for ours in SINGLE:
        if ours in median and y in median:
          ratios = [median[y][str(d)] / median[ours][str(d)] for d in args.densities]
          met = all(r >= least for r in ratios)
          lines.append(f"- target {name.replace('c ', ours + ' ', 1)}: {'met' if met else 'MISSED'} "
                       f"({', '.join(f'{r:.2f}x' for r in ratios)} at "
                       f"{', '.join(f'{100 * d:.0f}%' for d in args.densities)})")
    for ours in SINGLE:
      if ours in median and "p" in median and model in FLOOR_TARGETS:
        ratios = [median[ours][str(d)] / median["p"][str(d)] for d in args.densities]
        met = all(r <= FLOOR_TARGETS[model] for r in ratios)
        lines.append(f"- target {ours} within {FLOOR_TARGETS[model]}x of the floor p: "
                     f"{'met' if met else 'MISSED'} ({', '.join(f'{r:.2f}x' for r in ratios)} at "
                     f"{', '.join(f'{100 * d:.0f}%' for d in args.densities)})")
    if "p" in median:  # which targets the products alone leave room for
      for name, _, y, least in TARGETS.get(model, []):
        if y in median:
          lines.append(_floor_check(f"target {name.replace('c ', '', 1)}",
                                    [median[y][str(d)] / least for d in args.densities],
                                    [median["p"][str(d)] for d in args.densities], args.densities))
    if "n" in median and "o" in median:  # like for like: both loops on both cores
      ratios = [median["o"][str(d)] / median["n"][str(d)] for d in args.densities]
      lines.append(f"- both on two cores, o/n: {', '.join(f'{r:.2f}x' for r in ratios)} at "
                   f"{', '.join(f'{100 * d:.0f}%' for d in args.densities)}")
    if "q" in median and "r" in median:  # Keras 3 against tf_keras, both on the default engine
      ratios = [median["r"][str(d)] / median["q"][str(d)] for d in args.densities]
      met = all(r <= KERAS3_TARGET for r in ratios)
      lines.append(f"- target r within {KERAS3_TARGET}x of q (the model in Keras 3 against "
                   f"tf_keras): {'met' if met else 'MISSED'} "
                   f"({', '.join(f'{r:.2f}x' for r in ratios)} at "
                   f"{', '.join(f'{100 * d:.0f}%' for d in args.densities)})")
    if "q" in median and "j" in median:  # Keras 3 on JAX against the tf_keras default
      ratios = [median["j"][str(d)] / median["q"][str(d)] for d in args.densities]
      lines.append(f"- j/q (the model in Keras 3 on JAX against tf_keras's default): "
                   f"{', '.join(f'{r:.2f}x' for r in ratios)} at "
                   f"{', '.join(f'{100 * d:.0f}%' for d in args.densities)}")
    if "g" in median and "h" in median:  # like for like: both in bfloat16
      ratios = [median["h"][str(d)] / median["g"][str(d)] for d in args.densities]
      lines.append(f"- bfloat16 like for like, h/g: {', '.join(f'{r:.2f}x' for r in ratios)} at "
                   f"{', '.join(f'{100 * d:.0f}%' for d in args.densities)}")
  return "\n".join(lines) + "\n"


def _floor_check(name, allowed, floor, densities) -> str:
  """One line: the time a target allows against the products' own time (p), per density."""
  parts = [f"allows {a:.3f} s, the products alone take {f:.3f} s"
           f"{'' if f <= a else ' (unreachable)'} at {100 * d:.0f}%"
           for a, f, d in zip(allowed, floor, densities)]
  reachable = all(f <= a for a, f in zip(allowed, floor))
  return f"- floor, {name}: {'reachable' if reachable else 'UNREACHABLE on this machine'}; " + "; ".join(parts)


_MEASURE = """
import json, resource, subprocess, sys, time
started = time.perf_counter()
code = subprocess.run(sys.argv[1:], check=False).returncode
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({"code": code, "wall_s": seconds, "peak_rss_mib": peak}))
"""


def _run_whole(command, label):
  """Runs a command in a fresh parent; returns wall seconds and its peak resident memory.

  The parent reports the operating system's accounting of its only child (ru_maxrss, KiB).
  """
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
  completed = subprocess.run([sys.executable, "-c", _MEASURE] + command, cwd=REPO, env=env,
                             capture_output=True, text=True, check=False)
  result = json.loads(completed.stdout.strip().splitlines()[-1])
  if result["code"]:
    raise RuntimeError(f"{label} failed: {completed.stderr[-2000:]}")
  return result["wall_s"], result["peak_rss_mib"], completed.stdout


def whole_commands(args):
  out = {}
  lth = [sys.executable, "-m", "lth_tf.cli", "find"]
  with tempfile.TemporaryDirectory() as root:
    demo = lth + ["--flagfile=flags/demo.flags", f"--root_dir={root}/demo",
                  f"--data_dir={args.data_dir}", "--progress=false"]
    seconds, peak, stdout = _run_whole(demo, "demo")
    out["demo"] = {"command": "lth find --flagfile=flags/demo.flags", "wall_s": seconds,
                   "peak_rss_mib": peak}
    print(f"demo: {seconds:.1f} s, peak RSS {peak:.0f} MiB", flush=True)
    level = lth + ["--flagfile=flags/lenet300_fashion_mnist.flags", "--levels=1",
                   f"--iterations={args.level_iterations}", f"--root_dir={root}/level",
                   f"--data_dir={args.data_dir}", "--progress=false"]
    seconds, peak, stdout = _run_whole(level, "IMP level")
    walls = {}
    for dirpath, _, files in os.walk(os.path.join(root, "level")):
      if "metrics.json" in files:
        with open(os.path.join(dirpath, "metrics.json")) as handle:
          metrics = json.load(handle)
        walls[f"level {metrics['level']} {metrics['branch']}"] = metrics["wall_time_s"]
    level_one = sum(v for k, v in walls.items() if k.startswith("level 1 "))
    out["imp_level"] = {
        "command": ("lth find --flagfile=flags/lenet300_fashion_mnist.flags --levels=1 "
                    f"--iterations={args.level_iterations}"),
        "wall_s_whole_command": seconds, "peak_rss_mib": peak, "branch_wall_s": walls,
        "level_1_wall_s": level_one}
    print(f"IMP level 1 (ticket + reinit, {args.level_iterations} iterations each): "
          f"{level_one:.1f} s; whole command {seconds:.1f} s, peak RSS {peak:.0f} MiB", flush=True)
  return out


def imp_commands(args):
  """A whole IMP job: `lth find` (default engine, and `--engine=manual`) against the bare loop."""
  lth = [sys.executable, "-m", "lth_tf.cli", "find", "--flagfile=flags/lenet300_fashion_mnist.flags",
         f"--levels={args.imp_levels}", f"--iterations={args.imp_iterations}",
         f"--data_dir={args.data_dir}", "--progress=false"]
  bare = [sys.executable, os.path.join("benchmarks", "bare_imp.py"),  # run from the repository
          f"--data_dir={args.data_dir}", f"--iterations={args.imp_iterations}",
          f"--levels={args.imp_levels}"]
  variants = {"lth find": lth, "bare TensorFlow loop": bare}
  if args.imp_manual:
    variants["lth find --engine=manual"] = lth + ["--engine=manual"]
  seconds = {name: [] for name in variants}
  with tempfile.TemporaryDirectory() as root:
    for round_index in range(args.imp_rounds):
      turn = round_index % len(variants)
      order = list(variants)[turn:] + list(variants)[:turn]
      for name in order:
        command = variants[name]
        if command is not bare:
          command = command + [f"--root_dir={root}/{round_index}_{len(command)}"]
        wall, _, _ = _run_whole(command, name)
        seconds[name].append(wall)
        print(f"imp round {round_index} {name}: {wall:.1f} s", flush=True)
  median = {name: float(np.median(values)) for name, values in seconds.items()}
  return {"command": " ".join(lth[3:]), "bare": " ".join(bare[1:]), "wall_s": seconds,
          "median_wall_s": median,
          "ratio_to_bare": {name: median[name] / median["bare TensorFlow loop"]
                            for name in variants if name != "bare TensorFlow loop"}}


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--data_dir", default="data")
  parser.add_argument("--out", default="benchmarks/speed")
  parser.add_argument("--models", default="lenet,conv4")
  parser.add_argument("--contenders", default=",".join(DEFAULT_CONTENDERS))
  parser.add_argument("--densities", default="1.0,0.07")
  parser.add_argument("--rounds", type=int, default=5)
  parser.add_argument("--lenet_steps", type=int, default=1000)
  parser.add_argument("--conv4_steps", type=int, default=30)
  parser.add_argument("--conv4_rounds", type=int, default=3)
  parser.add_argument("--conv4_eval_rounds", type=int, default=0,
                      help="as --eval_rounds for Conv-4 (its evaluation is timed in the warm-up)")
  parser.add_argument("--eval_every", type=int, default=500, help="the paper's interval")
  parser.add_argument("--eval_rounds", type=int, default=-1,
                      help="timed rounds in which (c)/(e) evaluate for real; later rounds "
                           "reuse the measured evaluation time (-1: all rounds)")
  # On shared cores torch's OpenMP threads spin-wait at every barrier: with 2 threads its
  # LeNet loop was 40x slower than with 1 here, so the contender gets its faster setting.
  parser.add_argument("--torch_threads", type=int, default=1)
  parser.add_argument("--whole", action="store_true", help="also time the demo and an IMP level")
  parser.add_argument("--level_iterations", type=int, default=10000)
  parser.add_argument("--imp", action="store_true",
                      help="also time a whole IMP job: lth find against the bare TensorFlow loop")
  parser.add_argument("--imp_iterations", type=int, default=5000)
  parser.add_argument("--imp_levels", type=int, default=18)
  parser.add_argument("--imp_rounds", type=int, default=1)
  parser.add_argument("--imp_manual", action="store_true",
                      help="also time the whole IMP job with --engine=manual")
  parser.add_argument("--worker", choices=CONTENDERS)
  parser.add_argument("--model", choices=sorted(MODELS))
  args = parser.parse_args()
  if args.worker:
    worker_main(args)
    return 0
  args.models = [m for m in args.models.split(",") if m]
  args.contenders = [c for c in args.contenders.split(",") if c]
  args.densities = [float(d) for d in args.densities.split(",")]
  started = datetime.datetime.now(datetime.timezone.utc)
  results = measure(args)
  report = {
      "date": started.strftime("%Y-%m-%d %H:%M UTC"),
      "machine": f"{os.cpu_count()} CPU cores, {platform.machine()}, {platform.python_version()}",
      "command": "benchmarks/speed.py " + " ".join(sys.argv[1:]),
      "results": results,
  }
  if args.whole:
    report["whole"] = whole_commands(args)
  if args.imp:
    report["imp"] = imp_commands(args)
  text = table(results, args)
  if "whole" in report:
    whole = report["whole"]
    text += (f"\n- README demo: {whole['demo']['wall_s']:.1f} s, peak RSS "
             f"{whole['demo']['peak_rss_mib']:.0f} MiB\n"
             f"- one IMP level (LeNet, ticket + reinit, {args.level_iterations} iterations each): "
             f"{whole['imp_level']['level_1_wall_s']:.1f} s; peak RSS of that `lth find` "
             f"{whole['imp_level']['peak_rss_mib']:.0f} MiB\n")
  if "imp" in report:
    imp = report["imp"]
    text += (f"\n- whole IMP job (`{imp['command']}`), whole commands, median of "
             f"{args.imp_rounds}: " + ", ".join(f"{name} {seconds:.1f} s"
                                               for name, seconds in imp["median_wall_s"].items())
             + "; against the bare loop: " + ", ".join(
                 f"{name} {ratio:.2f}x" for name, ratio in imp["ratio_to_bare"].items()) + "\n")
  header = f"Measured {report['date']} on {report['machine']}: `{report['command']}`\n"
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  with open(args.out + ".json", "w") as handle:
    json.dump(report, handle, indent=1)
  with open(args.out + ".md", "w") as handle:
    handle.write(header + text)
  print(header + text)
  return 0


if __name__ == "__main__":
  sys.exit(main())
