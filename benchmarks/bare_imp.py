"""A bare TensorFlow IMP loop: the arithmetic of `lth find` on LeNet-300-100, nothing around it.

The contender that `benchmarks/speed.py --imp` times a whole `lth find` job against: the same
splits, batch, Adam settings, evaluation of the validation and test sets every `eval_every`
iterations in batches of 2,000, layerwise magnitude pruning (20% of the hidden layers, 10% of
the output layer per level), reset to θ0 for the ticket and a re-initialised control at every
level. The masked Adam step runs in one `tf.function` per evaluation interval; no checkpoints,
curves, files or controls beyond those. Prints one line per training and the total wall time.

  PYTHONPATH=. python benchmarks/bare_imp.py --data_dir=data --iterations=5000 --levels=18
"""
import argparse
import time

import numpy as np
import tensorflow as tf

from lth_tf import data as data_lib
from lth_tf.config import DatasetConfig

SIZES = (784, 300, 100, 10)
RATES = (0.2, 0.2, 0.1)  # per kernel: hidden, hidden, output


def init(seed):
  rng = np.random.default_rng(seed)
  params = []
  for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    params += [rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32),
               np.zeros(fan_out, np.float32)]
  return params


class Loop:
  def __init__(self, splits, args):
    self.args = args
    self.x = tf.constant(splits.x_train.reshape(len(splits.x_train), -1))
    self.y = tf.constant(splits.y_train)
    self.evals = {name: (tf.constant(x.reshape(len(x), -1)), tf.constant(y)) for name, x, y in
                  [("validation", splits.x_val, splits.y_val), ("test", splits.x_test, splits.y_test)]}
    self.w = [tf.Variable(p) for p in init(0)]
    self.m = [tf.Variable(tf.zeros_like(p)) for p in self.w]
    self.v = [tf.Variable(tf.zeros_like(p)) for p in self.w]
    self.mask = [tf.Variable(tf.ones_like(p)) for p in self.w]
    self.step = tf.Variable(0, dtype=tf.int64)

  @staticmethod
  def logits(w, x):
    h = tf.nn.relu(x @ w[0] + w[1])
    h = tf.nn.relu(h @ w[2] + w[3])
    return h @ w[4] + w[5]

  @tf.function
  def interval(self, order):
    lr, b1, b2, eps = self.args.learning_rate, 0.9, 0.999, 1e-7
    for i in tf.range(self.args.eval_every):
      index = order[i * self.args.batch_size:(i + 1) * self.args.batch_size]
      with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            self.y_gather(index), self.logits(self.w, tf.gather(self.x, index))))
      grads = tape.gradient(loss, self.w)
      self.step.assign_add(1)
      t = tf.cast(self.step, tf.float32)
      for w, m, v, g, k in zip(self.w, self.m, self.v, grads, self.mask):
        g = g * k
        m.assign(b1 * m + (1 - b1) * g)
        v.assign(b2 * v + (1 - b2) * g * g)
        w.assign_sub(lr * tf.sqrt(1 - b2 ** t) / (1 - b1 ** t) * m / (tf.sqrt(v) + eps))

  def y_gather(self, index):
    return tf.gather(self.y, index)

  @tf.function
  def evaluate(self, x, y):
    loss, correct = 0.0, 0
    for start in range(0, int(x.shape[0]), 2000):
      logits = self.logits(self.w, x[start:start + 2000])
      yb = y[start:start + 2000]
      loss += tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(yb, logits))
      correct += tf.reduce_sum(tf.cast(tf.argmax(logits, 1, output_type=tf.int32) == yb, tf.int32))
    return loss / x.shape[0], tf.cast(correct, tf.float32) / x.shape[0]

  def train(self, start, mask, seed):
    for var, value in zip(self.w, start):
      var.assign(value)
    for var, value in zip(self.mask, mask):
      var.assign(value)
    for var in self.m + self.v:
      var.assign(tf.zeros_like(var))
    self.step.assign(0)
    rng = np.random.default_rng(seed)
    steps_per_epoch = len(self.y) // self.args.batch_size
    best = (np.inf, 0.0)
    order = np.concatenate([rng.permutation(len(self.y)) for _ in range(
        self.args.iterations // steps_per_epoch + 2)]).astype(np.int32)
    per = self.args.eval_every * self.args.batch_size
    for interval in range(self.args.iterations // self.args.eval_every):
      self.interval(tf.constant(order[interval * per:(interval + 1) * per]))
      val_loss, _ = self.evaluate(*self.evals["validation"])
      _, test_acc = self.evaluate(*self.evals["test"])
      best = min(best, (float(val_loss), float(test_acc)))
    return [w.numpy() for w in self.w], best[1]


def prune(trained, mask):
  new = [k.copy() for k in mask]
  for i, rate in zip((0, 2, 4), RATES):
    alive = np.abs(trained[i][mask[i] > 0])
    remove = int(np.floor(rate * alive.size + 0.5))
    threshold = np.sort(alive)[remove] if remove else -np.inf
    new[i] = ((np.abs(trained[i]) >= threshold) & (mask[i] > 0)).astype(np.float32)
  return new


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--data_dir", default="data")
  parser.add_argument("--iterations", type=int, default=5000)
  parser.add_argument("--levels", type=int, default=18)
  parser.add_argument("--eval_every", type=int, default=500)
  parser.add_argument("--batch_size", type=int, default=60)
  parser.add_argument("--learning_rate", type=float, default=0.0012)
  args = parser.parse_args()
  began = time.perf_counter()
  splits = data_lib.load(DatasetConfig(name="fashion_mnist", validation_size=5000), args.data_dir)
  loop = Loop(splits, args)
  theta0 = init(0)
  mask = [np.ones_like(p) for p in theta0]
  trained, accuracy = loop.train(theta0, mask, seed=0)
  print(f"level 0 dense {accuracy:.4f} {time.perf_counter() - began:.1f} s", flush=True)
  for level in range(1, args.levels + 1):
    mask = prune(trained, mask)
    trained, accuracy = loop.train([p * k for p, k in zip(theta0, mask)], mask, seed=level)
    _, control = loop.train([p * k for p, k in zip(init(1000 + level), mask)], mask, seed=level)
    kept = sum(int(k[::1].sum()) for k in mask[0::2]) / sum(k.size for k in mask[0::2])
    print(f"level {level} {kept:.4f} ticket {accuracy:.4f} reinit {control:.4f} "
          f"{time.perf_counter() - began:.1f} s", flush=True)
  print(f"total {time.perf_counter() - began:.1f} s")


if __name__ == "__main__":
  main()
