"""Lottery tickets around a user's own `model.fit`: θk at step k, pruned weights exactly zero after
every step with Adam, SGD momentum and RMSprop, pruning by the mask policy, rewinding."""
import numpy as np
import pytest

from lth_tf import pruning, tickets
from lth_tf.compat import keras
from lth_tf.errors import UserError
from lth_tf.keras_fit import TicketSearch
from lth_tf.training import get_weights, optimizers

K = 7
OPTIMIZERS = {
    "adam": lambda: keras.optimizers.Adam(0.01),
    "sgd_momentum": lambda: keras.optimizers.SGD(0.05, momentum=0.9),
    "rmsprop": lambda: keras.optimizers.RMSprop(0.01, momentum=0.5, centered=True),
}


def _data():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(300, 12)).astype("float32")
  return x, (x[:, 0] + x[:, 1] > 0).astype("int64")


def build(input_shape, num_classes, seed):
  """The model, as a user's model function (the saved ticket's readers build it from here)."""
  inputs = keras.Input(input_shape)
  hidden = keras.layers.Dense(24, activation="relu", name="fc1")(inputs)
  hidden = keras.layers.BatchNormalization(name="bn1")(hidden)
  return keras.Model(inputs, keras.layers.Dense(num_classes, name="output")(hidden))


def _compiled(optimizer):
  keras.utils.set_random_seed(0)
  model = build((12,), 2, 0)
  model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"])
  return model


class _Watch(keras.callbacks.Callback):
  """After every step: the largest |value| of any pruned weight or of its optimizer slots; and
  the weights seen before the step at which the optimizer had taken K steps."""

  def __init__(self, search):
    super().__init__()
    self.search, self.worst, self.at_k = search, [], None

  def on_train_batch_begin(self, batch, logs=None):
    if self.search.iteration == K and self.at_k is None:
      self.at_k = get_weights(self.search.model)

  def on_train_batch_end(self, batch, logs=None):
    mask = self.search.mask
    worst = 0.0
    for name, weight, _ in pruning.mask_pairs(self.search.model):
      pruned = ~mask[name]
      for value in [weight] + optimizers.slots_of(self.search.optimizer, weight):
        worst = max(worst, float(np.abs(value.numpy()[pruned]).max(initial=0.0)))
    self.worst.append(worst)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_pruned_weights_and_slots_are_exactly_zero_after_every_step(name):
  x, y = _data()
  search = TicketSearch(_compiled(OPTIMIZERS[name]()), rewind_iteration=K)
  watch = _Watch(search)
  search.model.fit(x, y, batch_size=30, epochs=2, verbose=0, callbacks=search.callbacks() + [watch])
  # θk is the model after exactly K steps, weights and optimizer state.
  assert int(search.rewind_state["optimizer/0000"]) == K
  for key, value in watch.at_k.items():
    np.testing.assert_array_equal(search.rewind_weights[key], value, err_msg=key)
  dense_final = get_weights(search.model)
  for level in range(1, 4):
    before = search.mask
    mask = search.prune(fc_rate=0.5, output_rate=0.2)
    assert mask.is_subset_of(before)
    assert mask.layer_counts() == {
        n: pruning.remaining_after(before[n].size, 0.5 if n == "fc1/kernel" else 0.2, level)
        for n in mask}
    search.rewind()
    # Rewound: θk ⊙ m, the optimizer state captured at k with pruned slots zeroed.
    weights = get_weights(search.model)
    for key, value in search.rewind_weights.items():
      expected = value * mask[key] if key in mask else value
      np.testing.assert_array_equal(weights[key], expected, err_msg=key)
    assert search.iteration == K
    watch.worst.clear()
    history = search.model.fit(x, y, batch_size=30, epochs=1, verbose=0,
                               callbacks=search.callbacks() + [watch])
    assert len(watch.worst) == 10 and max(watch.worst) == 0.0
    assert np.isfinite(history.history["loss"][-1])
  # Training moved the surviving weights.
  assert not np.array_equal(get_weights(search.model)["fc1/kernel"], dense_final["fc1/kernel"])


def test_fresh_optimizer_and_reset_to_initial_weights():
  x, y = _data()
  model = _compiled(keras.optimizers.Adam(0.01))
  search = TicketSearch(model, rewind_iteration=0, rewind_optimizer="fresh")
  initial = get_weights(search.model)
  assert initial["fc1/kernel"].tolist() == model.get_layer("fc1").kernel.numpy().tolist()
  search.model.fit(x, y, batch_size=30, epochs=1, verbose=0, callbacks=search.callbacks())
  search.prune(fc_rate=0.5)
  search.rewind()
  assert search.iteration == 0
  assert all(not np.any(v) for v in optimizers.get_state(search.optimizer).values())
  np.testing.assert_array_equal(get_weights(search.model)["fc1/kernel"],
                                initial["fc1/kernel"] * search.mask["fc1/kernel"])


def test_global_scope_and_per_layer_rates():
  x, y = _data()
  search = TicketSearch(_compiled("adam"))
  search.model.fit(x, y, batch_size=30, epochs=1, verbose=0, callbacks=search.callbacks())
  mask = search.prune(rates={"fc1/kernel": 0.75}, output_rate=0.0)
  assert mask.layer_counts() == {"fc1/kernel": 72, "output/kernel": 48}
  before = search.mask
  trained = pruning.prunable_weights(search.model)
  mask = search.prune(scope="global", global_rate=0.5)
  assert sum(mask.layer_counts().values()) == 60 and mask.is_subset_of(before)
  smallest_kept = min(np.abs(trained[n][mask[n]]).min() for n in mask)
  largest_dropped = max(np.abs(trained[n][before[n] & ~mask[n]]).max(initial=0) for n in mask)
  assert smallest_kept >= largest_dropped


def test_bad_use_is_a_clear_error():
  with pytest.raises(UserError, match="compile the model first"):
    TicketSearch(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]))
  search = TicketSearch(_compiled("adam"), rewind_iteration=10_000)
  with pytest.raises(UserError, match="never captured"):
    search.prune()
  with pytest.raises(UserError, match="per-layer rates for weights the model does not prune"):
    TicketSearch(_compiled("adam")).prune(rates={"fc9/kernel": 0.5})
  with pytest.raises(UserError, match="fc_rate must be in"):
    TicketSearch(_compiled("adam")).prune(fc_rate=1.0)


def test_a_saved_ticket_reads_back_as_trained_and_refuses_a_model_it_does_not_fit(tmp_path):
  x, y = _data()
  search = TicketSearch(_compiled(keras.optimizers.SGD(0.05, momentum=0.9)), rewind_iteration=K)
  search.model.fit(x, y, batch_size=30, epochs=1, verbose=0, callbacks=search.callbacks())
  with pytest.raises(UserError, match="nothing is pruned yet"):
    search.save(str(tmp_path / "early"), "test_keras_fit:build", "npz:unused.npz")
  search.prune(fc_rate=0.5)
  search.rewind()
  search.model.fit(x, y, batch_size=30, epochs=1, verbose=0, callbacks=search.callbacks())
  path = search.save(str(tmp_path / "ticket"), "test_keras_fit:build", "npz:unused.npz",
                     mean=(0.5,), std=(0.25,), test_data=(x, y), batch_size=30)
  ticket = tickets.read(path)
  assert ticket.mask == search.mask
  assert (ticket.config.training.optimizer, ticket.config.training.learning_rate,
          ticket.config.training.momentum) == ("sgd", 0.05, 0.9)
  assert ticket.config.pruning.rewind_iteration == K and ticket.config.pruning.levels == 1
  assert ticket.config.model.source_sha256  # the model function's module, pinned
  assert (ticket.input_shape, ticket.num_classes, ticket.mean, ticket.std) == ((12,), 2, (0.5,),
                                                                              (0.25,))
  assert 0.5 < ticket.metrics["early_stop_test_accuracy"] <= 1.0
  for key, value in get_weights(search.model).items():
    np.testing.assert_array_equal(ticket.trained_weights[key], value, err_msg=key)
  for key, value in search.rewind_weights.items():
    expected = value * ticket.mask[key] if key in ticket.mask else value
    np.testing.assert_array_equal(ticket.rewind_weights[key], expected, err_msg=key)
  model = tickets.build_model(ticket, trained=True)  # from the model function, as export does
  np.testing.assert_allclose(model.predict(x[:50], verbose=0),
                             search.model.predict(x[:50], verbose=0), rtol=1e-5, atol=1e-6)
  with pytest.raises(UserError, match="does not build this model"):
    search.save(str(tmp_path / "other"), "lenet300_100", "npz:unused.npz")
