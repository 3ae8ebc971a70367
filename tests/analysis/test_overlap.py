"""Mask overlap: the measures and their random-mask baseline (against exact sums and a Monte Carlo
estimate), and which layers a pair of masks is compared on."""
import math

import numpy as np
import pytest

from lth_tf.analysis import masks as masks_lib
from lth_tf.analysis import overlap
from mask_samples import labelled, random_mask


def test_a_mask_overlaps_itself_fully():
  rng = np.random.default_rng(0)
  a = {"fc1/kernel": random_mask(rng, (40, 30), 300), "out/kernel": random_mask(rng, (30, 10), 7)}
  pair, = masks_lib.compare([labelled("a", a), labelled("b", a, level=1)])
  for value in list(pair.layers.values()) + [pair.overall]:
    assert value.jaccard == 1.0 and value.a_in_b == 1.0 and value.b_in_a == 1.0
    assert value.both == value.kept_a == value.kept_b
  assert pair.overall.both == 307 and pair.relation == "levels"


def test_complementary_masks_share_nothing():
  rng = np.random.default_rng(1)
  a = random_mask(rng, (40, 30), 500)
  pair, = masks_lib.compare([labelled("a", {"w": a}), labelled("b", {"w": ~a}, replicate=1)])
  value = pair.layers["w"]
  assert (value.both, value.jaccard, value.a_in_b, value.b_in_a) == (0, 0.0, 0.0, 0.0)
  assert (value.kept_a, value.kept_b) == (500, 700) and pair.relation == "replicates"
  # Random masks of these counts meet on 700 * 500 / 1200 weights on average.
  assert value.expected_both == pytest.approx(500 * 700 / 1200) and value.expected_jaccard > 0.3


def test_the_overlap_counts_equal_a_direct_count():
  rng = np.random.default_rng(2)
  stack = [rng.random((300, 700)) < p for p in (0.1, 0.5, 0.9)]  # several blocks of weights
  matrix = overlap.intersections(stack)
  for i, a in enumerate(stack):
    for j, b in enumerate(stack):
      assert matrix[i, j] == np.count_nonzero(a & b)


def _full_sum(n, ka, kb):
  """E[J] over the hypergeometric's whole support, from log-factorials."""
  def log_choose(m, r):
    return math.lgamma(m + 1) - math.lgamma(r + 1) - math.lgamma(m - r + 1)
  total = 0.0
  for x in range(max(0, ka + kb - n), min(ka, kb) + 1):
    p = math.exp(log_choose(ka, x) + log_choose(n - ka, kb - x) - log_choose(n, kb))
    total += p * (x / (ka + kb - x) if ka + kb - x else 1.0)
  return total


@pytest.mark.parametrize("n,ka,kb", [(10, 3, 4), (50, 1, 49), (2000, 1000, 1000), (5000, 50, 4000),
                                     (20000, 19990, 15), (7, 7, 7), (7, 0, 3), (9, 0, 0)])
def test_the_windowed_sum_is_the_full_hypergeometric_sum(n, ka, kb):
  assert overlap.expected_jaccard(n, ka, kb) == pytest.approx(_full_sum(n, ka, kb), rel=1e-10,
                                                                 abs=1e-15)


# (n, kept_a, kept_b) per layer: two small layers where E|A∩B| / |A∪B| is a poor guess, a dense
# one and a sparse one; the masks are random with exactly these counts.
LAYERS = {"small": (12, 3, 5), "tiny": (8, 2, 3), "dense": (400, 300, 200),
          "sparse": (3000, 60, 900)}
DRAWS = 20000


@pytest.fixture(scope="module")
def monte_carlo():
  """|A∩B| per layer and overall for DRAWS pairs of independent random masks (seeded)."""
  rng = np.random.default_rng(1234)
  per_layer = {}
  for name, (n, ka, kb) in LAYERS.items():
    # A uniformly random set of kb weights (a row's first kb of a random permutation) meets a
    # fixed set of ka (the weights below ka) as two independent random masks do: they are
    # exchangeable.
    per_layer[name] = np.concatenate([
        np.count_nonzero(rng.permuted(np.tile(np.arange(n), (1000, 1)), axis=1)[:, :kb] < ka,
                         axis=1) for _ in range(DRAWS // 1000)])
  return per_layer


def test_the_random_baseline_matches_a_monte_carlo_estimate(monte_carlo):
  """The tolerance is 5 standard errors of each Monte Carlo mean (a false alarm about 1 in 10^6
  per check, and the draws are seeded); the naive ratio E|A∩B| / (k_a + k_b - E|A∩B|) misses
  the small layer by 16 of them, so the check can tell an exact baseline from that guess."""
  per_layer = monte_carlo
  for name, (n, ka, kb) in LAYERS.items():
    both = per_layer[name]
    jaccard = both / (ka + kb - both)
    value = overlap.layer(n, ka, kb, 0)
    error = jaccard.std() / math.sqrt(DRAWS)
    assert abs(value.expected_jaccard - jaccard.mean()) < 5 * error, name
    assert abs(value.expected_a_in_b - (both / ka).mean()) < 5 * (both / ka).std() / math.sqrt(DRAWS)
    assert value.expected_both == ka * kb / n
  n, ka, kb = LAYERS["small"]
  naive = (ka * kb / n) / (ka + kb - ka * kb / n)
  assert abs(naive - (per_layer["small"] / (ka + kb - per_layer["small"])).mean()) > 10 * (
      per_layer["small"] / (ka + kb - per_layer["small"])).std() / math.sqrt(DRAWS)
  # Overall: the counts of the layers add, over every layer and over the two small ones (where
  # the naive ratio of the summed counts misses by 13 standard errors).
  for names in (list(LAYERS), ["small", "tiny"]):
    both = sum(per_layer[name] for name in names)
    kept = sum(LAYERS[name][1] + LAYERS[name][2] for name in names)
    jaccard = both / (kept - both)
    error = jaccard.std() / math.sqrt(DRAWS)
    combined = overlap.combined([overlap.layer(*LAYERS[name], 0) for name in names])
    assert abs(combined.expected_jaccard - jaccard.mean()) < 5 * error, names
    assert combined.expected_a_in_b == pytest.approx(
        sum(ka * kb / n for n, ka, kb in (LAYERS[name] for name in names)) /
        sum(LAYERS[name][1] for name in names))
  naive = combined.expected_both / (kept - combined.expected_both)
  assert abs(naive - jaccard.mean()) > 10 * error


def test_layers_of_another_shape_or_only_in_one_mask_are_skipped_and_named():
  rng = np.random.default_rng(3)
  hidden = random_mask(rng, (30, 20), 120)
  source = {"fc1/kernel": random_mask(rng, (784, 30), 4000), "fc2/kernel": hidden,
            "output/kernel": random_mask(rng, (20, 10), 100)}
  target = {"fc1/kernel": random_mask(rng, (1024, 30), 5000), "fc2/kernel": hidden,
            "output/kernel": random_mask(rng, (20, 4), 40), "extra/kernel": np.ones(3, bool)}
  pair, = masks_lib.compare([labelled("s", source, experiment="x"),
                             labelled("t", target, experiment="y")])
  assert pair.relation == "experiments"
  assert list(pair.layers) == ["fc2/kernel"]
  assert pair.skipped == {"fc1/kernel": "shape (784, 30) in A, (1024, 30) in B",
                          "output/kernel": "shape (20, 10) in A, (20, 4) in B",
                          "extra/kernel": "only in B"}
  assert pair.overall.weights == 600 and pair.overall.jaccard == 1.0


@pytest.mark.parametrize("other,expected", [
    (dict(level=3), "levels"), (dict(replicate=1), "replicates"),
    (dict(branch="target_ticket"), "branches"), (dict(experiment="f"), "experiments"),
    (dict(replicate=1, level=3), "other"), ({}, "same")])
def test_a_pair_is_labelled_by_how_its_masks_relate(other, expected):
  one = {"w": np.ones(4, bool)}
  assert masks_lib.relation(labelled("a", one), labelled("b", one, **other)) == expected
