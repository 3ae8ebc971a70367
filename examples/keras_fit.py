"""A lottery ticket with your own model.fit: LeNet-300-100 on Fashion-MNIST, IMP with rewinding.

    python examples/keras_fit.py --data_dir=data --out=runs/keras_fit_ticket
    lth tickets show runs/keras_fit_ticket
    lth export --ticket=runs/keras_fit_ticket --trust_code=examples.keras_fit:build_model --out=...

Needs Fashion-MNIST installed offline (`bash scripts/setup.sh` puts it in ./data). Run it from
the project's root, so that `examples.keras_fit:build_model` can be imported again by `lth`.
"""
import argparse

from lth_tf import data
from lth_tf.compat import keras
from lth_tf.config import DatasetConfig
from lth_tf.keras_fit import TicketSearch


def build_model(input_shape, num_classes, seed):
  inputs = keras.Input(input_shape)
  x = keras.layers.Flatten()(inputs)
  x = keras.layers.Dense(300, activation="relu", name="fc1")(x)
  x = keras.layers.Dense(100, activation="relu", name="fc2")(x)
  return keras.Model(inputs, keras.layers.Dense(num_classes, name="output")(x))


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--data_dir", default="data")
  parser.add_argument("--out", default="runs/keras_fit_ticket")
  parser.add_argument("--iterations", type=int, default=3000, help="about this many steps a level")
  parser.add_argument("--levels", type=int, default=5)
  args = parser.parse_args()

  dataset = DatasetConfig(name="fashion_mnist")
  splits = data.load(dataset, args.data_dir)  # normalised, validation held out
  model = build_model(splits.input_shape, splits.num_classes, seed=0)
  model.compile(keras.optimizers.Adam(1.2e-3),
                keras.losses.SparseCategoricalCrossentropy(from_logits=True), ["accuracy"])
  search = TicketSearch(model, rewind_iteration=100)  # θk at k = 100
  epochs = max(1, round(args.iterations * 60 / len(splits.y_train)))
  for level in range(args.levels + 1):
    if level:
      search.prune(fc_rate=0.2, output_rate=0.1)  # 20% of the hidden layers, 10% of the output
      search.rewind()                              # survivors back to θk
    search.model.fit(splits.x_train, splits.y_train, batch_size=60, epochs=epochs, verbose=0,
                     callbacks=search.callbacks())
    _, accuracy = search.model.evaluate(splits.x_test, splits.y_test, verbose=0)
    print(f"level {level}: {100 * search.weights_remaining():6.2f}% weights, "
          f"test accuracy {100 * accuracy:.2f}%")
  search.save(args.out, "examples.keras_fit:build_model", dataset, splits.mean, splits.std,
              test_data=(splits.x_test, splits.y_test), batch_size=60)
  print(f"ticket: {args.out}")


if __name__ == "__main__":
  main()
