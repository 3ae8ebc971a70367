"""The science of pruning, checked directly: counts, global ranking, shrinking masks, seeds."""
import numpy as np
import pytest

from lth_tf.errors import TicketError
from lth_tf.pruning import STRATEGIES, Mask, PruneRequest, random_mask_like, remaining_after
from lth_tf.pruning.strategies.base import number_to_prune, record

RNG = np.random.default_rng(0)
WEIGHTS = {"fc1/kernel": RNG.normal(size=(784, 300)), "fc2/kernel": RNG.normal(size=(300, 100)),
           "output/kernel": RNG.normal(size=(100, 10))}
RATES = {"fc1/kernel": 0.2, "fc2/kernel": 0.2, "output/kernel": 0.1}
# The strategies that need the weights alone and prune to the rates' counts (those that score
# with a model and a batch are checked on a model in test_init_strategies.py; a fixed pattern,
# N:M, in test_nm.py); per-layer-density ones rank globally only.
WEIGHTS_ONLY = [n for n in STRATEGIES.names() if not set(record(STRATEGIES.get(n)).needs)
                and not record(STRATEGIES.get(n)).final_after]
LAYERWISE = [n for n in WEIGHTS_ONLY if not record(STRATEGIES.get(n)).global_only]


def _trained(level):
  """The weights a strategy sees at `level`: WEIGHTS first, then new values every round, as
  training moves them. Pruned positions get values too (large ones among them): only the
  strategy's own rule may keep a pruned weight pruned."""
  if level == 0:
    return WEIGHTS
  rng = np.random.default_rng(1000 + level)
  return {name: rng.normal(size=w.shape) for name, w in WEIGHTS.items()}


def _iterate(strategy, rounds, **kwargs):
  mask = Mask.ones_like(WEIGHTS)
  masks = [mask]
  for level in range(rounds):
    mask = STRATEGIES.get(strategy)(PruneRequest(_trained(level), mask, seed=level, **kwargs))
    masks.append(mask)
  return masks


@pytest.mark.parametrize("strategy", LAYERWISE)
def test_layerwise_density_after_rounds_is_the_product(strategy):
  masks = _iterate(strategy, 12, layer_rates=RATES)
  for level, mask in enumerate(masks):
    for name, rate in RATES.items():
      expected = WEIGHTS[name].size * (1 - rate) ** level
      assert abs(int(mask[name].sum()) - expected) <= level  # one weight of rounding per round
      assert int(mask[name].sum()) == remaining_after(WEIGHTS[name].size, rate, level)


def test_lenet_weights_remaining_match_the_paper():
  # Frankle & Carbin: 51.3% (3), 21.1% (7), 7.0% (12), 3.6% (15), 1.9% (18) for LeNet-300-100.
  weights = {"fc1/kernel": np.ones((784, 300)), "fc2/kernel": np.ones((300, 100)),
             "output/kernel": np.ones((100, 10))}
  total = sum(w.size for w in weights.values())
  for rounds, paper in [(3, 51.3), (7, 21.1), (12, 7.0), (15, 3.6), (18, 1.9)]:
    kept = sum(remaining_after(w.size, RATES[n], rounds) for n, w in weights.items())
    assert round(100 * kept / total, 1) == pytest.approx(paper, abs=0.1)


@pytest.mark.parametrize("strategy", LAYERWISE)
def test_masks_only_shrink(strategy):
  masks = _iterate(strategy, 8, layer_rates=RATES)
  for before, after in zip(masks, masks[1:]):
    assert after.is_subset_of(before)
    assert after.num_remaining() < before.num_remaining()


def test_layerwise_magnitude_keeps_the_largest_surviving_weights():
  mask = _iterate("magnitude", 1, layer_rates=RATES)[1]
  for name in WEIGHTS:
    kept = np.abs(WEIGHTS[name][mask[name]])
    dropped = np.abs(WEIGHTS[name][~mask[name]])
    assert kept.min() >= dropped.max()


def test_global_magnitude_keeps_exactly_the_largest_across_layers():
  layers = ("fc1/kernel", "fc2/kernel")
  mask = STRATEGIES.get("magnitude")(PruneRequest(
      WEIGHTS, Mask.ones_like(WEIGHTS), global_layers=layers, global_rate=0.6))
  chosen = np.concatenate([np.abs(WEIGHTS[n]).ravel() for n in layers])
  keep = remaining_after(chosen.size, 0.6, 1)
  threshold = np.sort(chosen)[::-1][keep - 1]
  assert sum(int(mask[n].sum()) for n in layers) == keep
  for name in layers:
    assert np.array_equal(mask[name], np.abs(WEIGHTS[name]) >= threshold)
  assert mask["output/kernel"].all()  # outside the global set: untouched
  # Layers are pruned unevenly: the global threshold, not a per-layer rate.
  assert mask["fc1/kernel"].mean() != pytest.approx(mask["fc2/kernel"].mean(), abs=1e-3)


@pytest.mark.parametrize("strategy", WEIGHTS_ONLY)
def test_global_pruning_of_a_pruned_mask_never_revives_weights(strategy):
  layers = ("fc1/kernel", "fc2/kernel")
  masks = _iterate(strategy, 4, global_layers=layers, global_rate=0.3)
  total = sum(WEIGHTS[n].size for n in layers)
  for level, (before, after) in enumerate(zip(masks, masks[1:]), start=1):
    assert after.is_subset_of(before)
    assert sum(int(after[n].sum()) for n in layers) == remaining_after(total, 0.3, level)


def test_weights_move_between_rounds_in_these_tests():
  # The shrinking tests above mean something only if a pruned weight can look large later.
  first = _iterate("magnitude", 1, layer_rates=RATES)[1]
  later = _trained(1)["fc1/kernel"]
  dropped = ~first["fc1/kernel"]
  assert np.abs(later[dropped]).max() > np.median(np.abs(later[~dropped]))


def test_one_shot_reaches_the_iterative_density():
  iterative = _iterate("magnitude", 6, layer_rates=RATES)[-1]
  one_shot = STRATEGIES.get("magnitude")(PruneRequest(
      WEIGHTS, Mask.ones_like(WEIGHTS), layer_rates=RATES, rounds=6))
  assert one_shot.layer_counts() == iterative.layer_counts()
  # Same weights, so one-shot magnitude keeps exactly the top weights.
  for name in WEIGHTS:
    assert np.abs(WEIGHTS[name][one_shot[name]]).min() >= np.abs(WEIGHTS[name][~one_shot[name]]).max()


def test_same_seed_same_mask_and_different_seed_different_mask():
  a = STRATEGIES.get("random")(PruneRequest(WEIGHTS, Mask.ones_like(WEIGHTS), RATES, seed=1))
  b = STRATEGIES.get("random")(PruneRequest(WEIGHTS, Mask.ones_like(WEIGHTS), RATES, seed=1))
  c = STRATEGIES.get("random")(PruneRequest(WEIGHTS, Mask.ones_like(WEIGHTS), RATES, seed=2))
  assert a == b and a != c
  m1 = STRATEGIES.get("magnitude")(PruneRequest(WEIGHTS, Mask.ones_like(WEIGHTS), RATES))
  m2 = STRATEGIES.get("magnitude")(PruneRequest(WEIGHTS, Mask.ones_like(WEIGHTS), RATES))
  assert m1 == m2


def test_random_mask_like_keeps_per_layer_counts_but_moves_weights():
  ticket = _iterate("magnitude", 5, layer_rates=RATES)[-1]
  control = random_mask_like(ticket, seed=3)
  assert control.layer_counts() == ticket.layer_counts()
  assert control != ticket
  assert random_mask_like(ticket, seed=3) == control


def test_rounding_rule():
  assert number_to_prune(10, 0.25) == 3  # 2.5 rounds half up
  assert number_to_prune(100, 0.2) == 20
  assert number_to_prune(1, 0.2) == 0


def test_mask_must_fit_the_model():
  mask = Mask.ones_like(WEIGHTS)
  with pytest.raises(TicketError, match="shape"):
    mask.check_fits({"fc1/kernel": (784, 301), "fc2/kernel": (300, 100), "output/kernel": (100, 10)})
  with pytest.raises(TicketError, match="missing"):
    mask.check_fits({"fc1/kernel": (784, 300)} | {"conv/kernel": (3, 3, 1, 1)})


def test_mask_rejects_non_binary_values():
  with pytest.raises(TicketError, match="0 and 1"):
    Mask.from_dict({"a": np.array([0.0, 0.5])})
