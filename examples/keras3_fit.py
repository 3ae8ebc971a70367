"""A lottery ticket with your own Keras 3 `model.fit`: a small CNN on Fashion-MNIST, IMP with
rewinding, then a ticket that `lth` exports.

    python examples/keras3_fit.py --data_dir=data --out=runs/keras3_fit_ticket
    lth tickets show runs/keras3_fit_ticket
    lth export --ticket=runs/keras3_fit_ticket --trust_code=examples.keras3_fit:build_model --out=...

The model is plain Keras 3 (`import keras`, the TensorFlow backend), compiled and fitted as
keras.io writes it; `TicketSearch` keeps its pruned weights and their Adam moments at exactly
zero after every step. Needs Fashion-MNIST installed offline (`bash scripts/setup.sh` puts it in
./data). Run it from the project's root, so that `examples.keras3_fit:build_model` can be
imported again by `lth`.
"""
import argparse

import keras

from lth_tf import data
from lth_tf.config import DatasetConfig
from lth_tf.keras_fit import TicketSearch


def build_model(input_shape, num_classes, seed):
  keras.utils.set_random_seed(seed)
  return keras.Sequential([
      keras.Input(shape=input_shape),
      keras.layers.Conv2D(16, 3, activation="relu"),
      keras.layers.MaxPooling2D(),
      keras.layers.Flatten(),
      keras.layers.Dense(128, activation="relu"),
      keras.layers.Dense(num_classes, activation="softmax"),
  ])


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--data_dir", default="data")
  parser.add_argument("--out", default="runs/keras3_fit_ticket")
  parser.add_argument("--iterations", type=int, default=2000, help="about this many steps a level")
  parser.add_argument("--levels", type=int, default=4)
  args = parser.parse_args()

  dataset = DatasetConfig(name="fashion_mnist")
  splits = data.load(dataset, args.data_dir)  # normalised, validation held out
  model = build_model(splits.input_shape, splits.num_classes, seed=0)
  model.compile(optimizer=keras.optimizers.Adam(1e-3),
                loss=keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])
  search = TicketSearch(model, rewind_iteration=50)  # θk at k = 50
  epochs = max(1, round(args.iterations * 64 / len(splits.y_train)))
  for level in range(args.levels + 1):
    if level:
      search.prune(conv_rate=0.15, fc_rate=0.3, output_rate=0.15)
      search.rewind()                                              # survivors back to θk
    search.model.fit(splits.x_train, splits.y_train, batch_size=64, epochs=epochs, verbose=0,
                     callbacks=search.callbacks())
    _, accuracy = search.model.evaluate(splits.x_test, splits.y_test, verbose=0)
    print(f"level {level}: {100 * search.weights_remaining():6.2f}% weights, "
          f"test accuracy {100 * accuracy:.2f}%")
  search.save(args.out, "examples.keras3_fit:build_model", dataset, splits.mean, splits.std,
              test_data=(splits.x_test, splits.y_test), batch_size=64)
  print(f"ticket: {args.out}")


if __name__ == "__main__":
  main()
