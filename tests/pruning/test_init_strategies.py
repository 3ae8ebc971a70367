"""Pruning at initialisation, checked against the formulas on a tiny network: SNIP's |g ⊙ θ| and
GraSP's −θ ⊙ Hg from hand-computed gradients and Hessian-gradient products, SynFlow's path-norm
scores (data-free) and its iterative schedule, the Erdős–Rényi-kernel densities; and the policy
around them (θk scored in the level loop, global by default, refusals before training)."""
import numpy as np
import pytest

from lth_tf import pruning
from lth_tf.compat import keras
from lth_tf.config import ExperimentConfig, PruningConfig
from lth_tf.validation import validate
from lth_tf.errors import ConfigError
from lth_tf.pruning import STRATEGIES, Mask, PruneRequest, layer_densities, remaining_after
from lth_tf.pruning.strategies.base import exponential_schedule, prune_in_steps, record
from lth_tf.pruning.strategies.grasp import grasp_scores
from lth_tf.pruning.strategies.snip import snip_scores
from lth_tf.pruning.strategies.synflow import synflow_scores
from lth_tf.training import get_weights, set_weights

N_IN, N_HIDDEN, N_OUT = 4, 3, 2


def _tiny():
  """fc1 (4 -> 3, ReLU) -> output (3 -> 2), wrapped; fixed weights, a mask pruning three
  kernel weights, and a batch of five examples with no pre-activation near zero."""
  inputs = keras.Input((N_IN,))
  hidden = keras.layers.Dense(N_HIDDEN, activation="relu", name="fc1")(inputs)
  model = pruning.wrap_model(keras.Model(inputs, keras.layers.Dense(N_OUT, name="output")(hidden)))
  rng = np.random.default_rng(7)
  weights = {"fc1/kernel": rng.normal(size=(N_IN, N_HIDDEN)), "fc1/bias": rng.normal(size=N_HIDDEN) * 0.1,
             "output/kernel": rng.normal(size=(N_HIDDEN, N_OUT)), "output/bias": rng.normal(size=N_OUT) * 0.1}
  weights = {name: w.astype(np.float32) for name, w in weights.items()}
  set_weights(model, weights)
  keep1 = np.ones((N_IN, N_HIDDEN), bool)
  keep1[0, 1] = keep1[2, 2] = False
  keep2 = np.ones((N_HIDDEN, N_OUT), bool)
  keep2[1, 0] = False
  mask = Mask.from_dict({"fc1/kernel": keep1, "output/kernel": keep2})
  x = rng.normal(size=(5, N_IN)).astype(np.float32)
  y = np.array([0, 1, 1, 0, 1])
  pre = x @ (weights["fc1/kernel"] * keep1) + weights["fc1/bias"]
  assert np.abs(pre).min() > 1e-3 and (pre > 0).any() and (pre < 0).any()
  return model, weights, mask, (x, y)


def _request(model, weights, mask, batch, **kwargs):
  asked = []

  def draw(seed, size, per_class=False):
    asked.append((seed, size, per_class))
    return batch

  request = PruneRequest({n: weights[n] for n in mask}, mask, model=model, batch=draw, **kwargs)
  return request, asked


def _hand(weights, mask, x, y, temperature=1.0):
  """The masked network's gradient g of the loss on the logits divided by `temperature`, and its
  Hessian-gradient product Hg, by hand."""
  w1 = weights["fc1/kernel"].astype(np.float64) * mask["fc1/kernel"]
  w2 = weights["output/kernel"].astype(np.float64) * mask["output/kernel"]
  b1, b2 = weights["fc1/bias"].astype(np.float64), weights["output/bias"].astype(np.float64)
  n = len(y)
  a = x @ w1 + b1
  d = (a > 0).astype(np.float64)
  h = d * a
  z = (h @ w2 + b2) / temperature
  p = np.exp(z - z.max(1, keepdims=True))
  p /= p.sum(1, keepdims=True)
  e = (p - np.eye(N_OUT)[y]) / (n * temperature)  # ∂L/∂(hW + b) for the mean cross-entropy
  g1 = (x.T @ (d * (e @ w2.T))) * mask["fc1/kernel"]
  g2 = (h.T @ e) * mask["output/kernel"]
  # Hg = the derivative of the gradient along v = g (masked): d/dε g(θ + ε v) at ε = 0.
  v1, v2 = g1, g2
  dh = d * (x @ v1)
  dz = (dh @ w2 + h @ v2) / temperature
  dp = p * dz - p * (p * dz).sum(1, keepdims=True)  # (diag(p) − p pᵀ) dz
  de = dp / (n * temperature)
  hg1 = (x.T @ (d * (de @ w2.T + e @ v2.T))) * mask["fc1/kernel"]
  hg2 = (dh.T @ e + h.T @ de) * mask["output/kernel"]
  return {"fc1/kernel": g1, "output/kernel": g2}, {"fc1/kernel": hg1, "output/kernel": hg2}


def test_snip_scores_are_the_masked_gradient_times_the_weights():
  model, weights, mask, (x, y) = _tiny()
  request, asked = _request(model, weights, mask, (x, y), seed=5)
  scores = snip_scores(request)
  grads, _ = _hand(weights, mask, x.astype(np.float64), y)
  for name in mask:
    expected = np.abs(grads[name] * weights[name] * mask[name])
    np.testing.assert_allclose(scores[name], expected, rtol=1e-4, atol=1e-7)
    assert (scores[name][~mask[name]] == 0).all()
  assert asked == [(5, 10, True)]  # one seeded batch, ten examples of every class


def test_grasp_scores_are_minus_weights_times_the_hessian_gradient_product_at_temperature_200():
  model, weights, mask, (x, y) = _tiny()
  request, asked = _request(model, weights, mask, (x, y))
  scores = grasp_scores(request)
  _, products = _hand(weights, mask, x.astype(np.float64), y, temperature=200.0)
  for name in mask:
    expected = -weights[name].astype(np.float64) * mask[name] * products[name]
    np.testing.assert_allclose(scores[name], expected, rtol=1e-4, atol=1e-12)
  assert any(np.abs(scores[name]).max() > 1e-8 for name in mask)  # not trivially zero
  assert asked == [(0, 10, True)]  # ten examples of every class, drawn class by class
  # Without the temperature the products are another vector, not a multiple of these.
  _, cold = _hand(weights, mask, x.astype(np.float64), y)
  live = {n: mask[n] & (np.abs(cold[n]) > 1e-12) for n in mask}
  ratio = np.concatenate([(products[n][live[n]] / cold[n][live[n]]) for n in mask])
  assert np.ptp(ratio) > 1e-3 * np.abs(ratio).max()
  # GraSP prunes the highest S: the kept weights are those of lowest S.
  kept = STRATEGIES.get("grasp")(PruneRequest(
      request.weights, mask, global_layers=tuple(mask), global_rate=0.5, model=model,
      batch=request.batch))
  flat_kept = np.concatenate([scores[n][kept[n]] for n in mask])
  flat_dropped = np.concatenate([scores[n][mask[n] & ~kept[n]] for n in mask])
  assert flat_kept.max() <= flat_dropped.min()


def test_snip_keeps_the_top_scores_globally_and_is_deterministic():
  model, weights, mask, (x, y) = _tiny()
  request, _ = _request(model, weights, mask, (x, y), global_layers=tuple(mask), global_rate=0.4)
  first = STRATEGIES.get("snip")(request)
  assert STRATEGIES.get("snip")(request) == first
  scores = snip_scores(request)
  kept = np.concatenate([scores[n][first[n]] for n in mask])
  dropped = np.concatenate([scores[n][mask[n] & ~first[n]] for n in mask])
  assert kept.min() >= dropped.max()
  assert first.num_remaining() == remaining_after(mask.num_remaining(), 0.4, 1)
  assert first.is_subset_of(mask)


def _hand_synflow(weights, mask):
  """SynFlow on the tiny network by hand: all weights |·|, input ones, R = Σ outputs."""
  w1 = np.abs(weights["fc1/kernel"].astype(np.float64)) * mask["fc1/kernel"]
  w2 = np.abs(weights["output/kernel"].astype(np.float64)) * mask["output/kernel"]
  b1 = np.abs(weights["fc1/bias"].astype(np.float64))
  h = np.ones(N_IN) @ w1 + b1  # every unit is active: all terms are non-negative
  d_w2 = np.outer(h, np.ones(N_OUT))
  d_w1 = np.outer(np.ones(N_IN), w2 @ np.ones(N_OUT))
  return {"fc1/kernel": np.abs(d_w1 * w1), "output/kernel": np.abs(d_w2 * w2)}


def test_synflow_scores_are_the_path_norm_formula_and_data_free():
  model, weights, mask, (x, y) = _tiny()
  set_weights(model, weights)
  plain, _ = _request(model, weights, mask, (x, y))
  scores = synflow_scores(plain)
  for name, expected in _hand_synflow(weights, mask).items():
    np.testing.assert_allclose(scores[name], expected, rtol=1e-5)
  # The same for any batch and for none: no data is read.
  other, asked = _request(model, weights, mask, (x * 100 + 3, 1 - y))
  no_batch = PruneRequest(plain.weights, mask, model=model, batch=None)
  for request in (other, no_batch):
    again = synflow_scores(request)
    assert all(np.array_equal(again[n], scores[n]) for n in mask)
  assert asked == []


@pytest.mark.parametrize("name", ["snip", "grasp", "synflow"])
def test_scoring_never_changes_the_model_it_scores(name):
  """A strategy scoring in several steps sets a sparser mask at each step; the model holds its
  own mask, weights and every other variable again afterwards (the early-bird watch scores the
  dense training's live model)."""
  model, weights, mask, (x, y) = _tiny()
  pruning.set_mask(model, Mask.ones_like(mask))  # a dense training's model
  before = [variable.numpy().copy() for variable in model.weights]
  request, _ = _request(model, weights, mask, (x, y), global_layers=tuple(mask), global_rate=0.5,
                        score_iterations=5)
  pruned = STRATEGIES.get(name)(request)
  assert pruned.num_remaining() < mask.num_remaining()
  after = [variable.numpy() for variable in model.weights]
  assert all(np.array_equal(a, b) for a, b in zip(after, before))
  assert pruning.get_mask(model) == Mask.ones_like(mask)
  assert all(np.count_nonzero(get_weights(model)[n]) == mask[n].size for n in mask)


@pytest.mark.parametrize("rate,rounds", [(0.2, 1), (0.5, 2), (0.9, 1), (0.2, 7)])
def test_synflow_iterates_to_exactly_the_asked_density(rate, rounds):
  model, weights, _, (x, y) = _tiny()
  dense = Mask.ones_like({n: weights[n] for n in ("fc1/kernel", "output/kernel")})
  seen = []

  def counting(request):
    seen.append(request.mask.num_remaining())
    return synflow_scores(request)

  request, _ = _request(model, weights, dense, (x, y), global_layers=tuple(dense),
                        global_rate=rate, rounds=rounds, score_iterations=10)
  mask = prune_in_steps(request, counting, 10)
  target = remaining_after(dense.num_remaining(), rate, rounds)
  assert mask.num_remaining() == target
  # Rescored on every step's mask, along the exponential schedule.
  assert seen == [dense.num_remaining()] + exponential_schedule(dense.num_remaining(), target, 10)[:-1]
  assert len(set(seen)) > 2
  assert mask == STRATEGIES.get("synflow")(request)  # the registered strategy takes these steps


def test_synflow_takes_its_own_100_steps_by_default():
  assert record(STRATEGIES.get("synflow")).iterations == 100
  assert all(record(STRATEGIES.get(n)).iterations == 1 for n in STRATEGIES.names() if n != "synflow")


def test_the_exponential_schedule_ends_exactly_at_the_target():
  for start, target, steps in [(266200, 5058, 100), (30, 7, 100), (10, 0, 4), (1000, 1000, 5)]:
    counts = exponential_schedule(start, target, steps)
    assert len(counts) == steps and counts[-1] == target
    assert all(a >= b for a, b in zip([start] + counts, counts))
  counts = np.array(exponential_schedule(1_000_000, 1_000, 10), float)
  ratios = counts[1:] / counts[:-1]
  np.testing.assert_allclose(ratios, 10 ** -0.3, rtol=1e-3)  # constant ratio per step


# ---- ERK and uniform -----------------------------------------------------------------------

SHAPES = {"conv1/kernel": (3, 3, 3, 16), "conv2/kernel": (3, 3, 16, 32), "fc/kernel": (2048, 64),
          "output/kernel": (64, 10)}


@pytest.mark.parametrize("density", [0.5, 0.2, 0.05])
def test_erk_densities_follow_the_rule_and_meet_the_overall_density(density):
  sizes = {n: int(np.prod(s)) for n, s in SHAPES.items()}
  total = int(round(density * sum(sizes.values())))
  counts = layer_densities.allocate(total, SHAPES, layer_densities.erdos_renyi_kernel, sizes)
  assert sum(counts.values()) == total
  raw = {n: np.sum(s) / np.prod(s) for n, s in SHAPES.items()}
  free = [n for n in SHAPES if counts[n] < sizes[n]]
  capped = [n for n in SHAPES if counts[n] == sizes[n]]
  scale = (total - sum(sizes[n] for n in capped)) / sum(raw[n] * sizes[n] for n in free)
  for name in free:  # density = ε (n_in + n_out + h + w) / (n_in n_out h w), within rounding
    assert abs(counts[name] - scale * raw[name] * sizes[name]) < 1
  for name in capped:  # capped because the rule would give them a density above 1
    assert scale * raw[name] >= 1
  assert all(scale * raw[n] < 1 for n in free)
  if density == 0.5:
    assert capped == ["conv1/kernel", "output/kernel"]  # small layers are kept dense


def test_erk_by_hand():
  # Two dense layers (4, 4) and (2, 8): rules 8/16 and 10/16; 12 weights to keep of 32:
  # ε (0.5·16 + 0.625·16) = 12 gives ε = 2/3: shares 5.33 and 6.67, rounded to 5 and 7.
  shapes = {"a": (4, 4), "b": (2, 8)}
  counts = layer_densities.allocate(12, shapes, layer_densities.erdos_renyi_kernel,
                                    {"a": 16, "b": 16})
  assert counts == {"a": 5, "b": 7}
  # 28 of 32: ε = 28/18 gives b a density above 1: b is dense and a takes the other 12.
  assert layer_densities.allocate(28, shapes, layer_densities.erdos_renyi_kernel,
                                  {"a": 16, "b": 16}) == {"a": 12, "b": 16}


@pytest.mark.parametrize("name,rule", [("erk", layer_densities.erdos_renyi_kernel),
                                       ("uniform", layer_densities.uniform)])
def test_random_masks_at_per_layer_densities(name, rule):
  weights = {n: np.zeros(s) for n, s in SHAPES.items()}
  dense = Mask.ones_like(weights)
  request = PruneRequest(weights, dense, global_layers=tuple(SHAPES), global_rate=0.8, seed=3)
  mask = STRATEGIES.get(name)(request)
  total = remaining_after(dense.num_weights(), 0.8, 1)
  assert mask.num_remaining() == total
  sizes = {n: int(np.prod(s)) for n, s in SHAPES.items()}
  assert mask.layer_counts() == layer_densities.allocate(total, SHAPES, rule, sizes)
  assert STRATEGIES.get(name)(request) == mask
  other = STRATEGIES.get(name)(PruneRequest(weights, dense, global_layers=tuple(SHAPES),
                                            global_rate=0.8, seed=4))
  assert other != mask and other.layer_counts() == mask.layer_counts()
  if name == "uniform":
    densities = [c / sizes[n] for n, c in mask.layer_counts().items()]
    assert max(densities) - min(densities) < 0.01


# ---- every strategy on a model: counts, shrinking masks ------------------------------------

@pytest.mark.parametrize("strategy", [n for n in STRATEGIES.names()
                                      if not record(STRATEGIES.get(n)).final_after])
def test_every_strategy_on_a_model_prunes_to_the_count_and_only_shrinks(strategy):
  model, weights, mask, (x, y) = _tiny()
  request, _ = _request(model, weights, mask, (x, y), global_layers=tuple(mask), global_rate=0.3,
                        score_iterations=3)
  first = STRATEGIES.get(strategy)(request)
  assert first.is_subset_of(mask)
  assert first.num_remaining() == remaining_after(mask.num_remaining(), 0.3, 1)
  second = STRATEGIES.get(strategy)(_request(model, weights, first, (x, y),
                                             global_layers=tuple(mask), global_rate=0.3)[0])
  assert second.is_subset_of(first)


# ---- the policy ------------------------------------------------------------------------------

KINDS = {"conv1/kernel": "conv", "fc/kernel": "fc", "output/kernel": "output"}


def test_init_strategies_rank_globally_over_all_layers_by_default():
  for name in ("snip", "grasp", "synflow", "magnitude_init", "erk", "uniform"):
    assert pruning.global_layers(PruningConfig(strategy=name), KINDS) == tuple(KINDS)
    assert pruning.global_layers(PruningConfig(strategy=name, init_scope="scope", scope="global"),
                                 KINDS) == ("conv1/kernel",)
  assert pruning.global_layers(PruningConfig(strategy="snip", init_scope="layerwise"), KINDS) is None
  assert pruning.global_layers(PruningConfig(), KINDS) is None  # magnitude: layerwise as before


def test_new_fields_keep_existing_hashes():
  assert ExperimentConfig().experiment_hash() == "ec75416aa5cf"
  snip = ExperimentConfig(pruning=PruningConfig(strategy="snip"))
  assert snip.experiment_hash() != ExperimentConfig().experiment_hash()


@pytest.mark.parametrize("pruning_config,message", [
    (PruningConfig(strategy="erk", init_scope="layerwise"), "needs global scope"),
    (PruningConfig(strategy="snip", scope="global"), "give --init_scope=scope"),
    (PruningConfig(strategy="synflow", global_layers="all"), "give --init_scope=scope"),
])
def test_a_scope_the_strategy_does_not_rank_by_is_refused(pruning_config, message):
  with pytest.raises(ConfigError, match=message):
    pruning.global_layers(pruning_config, KINDS)


def test_bad_settings_are_refused():
  with pytest.raises(ConfigError, match="init_scope must be one of"):
    validate(ExperimentConfig(pruning=PruningConfig(init_scope="sideways")))
  with pytest.raises(ConfigError, match="score_iterations must be >= 0"):
    validate(ExperimentConfig(pruning=PruningConfig(score_iterations=-1)))
  with pytest.raises(ConfigError, match="unknown pruning strategy 'snipe'"):
    pruning.check_inputs(PruningConfig(strategy="snipe"), (), "here")


def test_a_strategy_needing_a_model_or_batch_is_refused_where_there_is_none():
  with pytest.raises(ConfigError, match="needs the weights a level restarts from .* and the model "
                     "holding the weights and a batch of training data, which TicketSearch"):
    pruning.check_inputs(PruningConfig(strategy="snip"), (), "TicketSearch")
  pruning.check_inputs(PruningConfig(strategy="magnitude"), (), "TicketSearch")
  weights = {"fc/kernel": np.ones((3, 3))}
  for name, what in (("snip", "model"), ("grasp", "model"), ("synflow", "model")):
    with pytest.raises(ConfigError, match=f"needs the {what}"):
      STRATEGIES.get(name)(PruneRequest(weights, Mask.ones_like(weights), {"fc/kernel": 0.5}))
  with pytest.raises(ConfigError, match="scores the rewind weights"):
    pruning.scored_weights(PruningConfig(strategy="snip"), weights, None)
  assert pruning.scored_weights(PruningConfig(), weights, None) is weights


def test_ticket_search_refuses_strategies_it_cannot_feed():
  from lth_tf.keras_fit import TicketSearch  # pylint: disable=import-outside-toplevel
  inputs = keras.Input((4,))
  model = keras.Model(inputs, keras.layers.Dense(2, name="output")(inputs))
  model.compile("adam", "sparse_categorical_crossentropy")
  with pytest.raises(ConfigError, match="pruning strategy 'grasp' needs"):
    TicketSearch(model, strategy="grasp")
