"""N:M structured tickets (`--pruning_strategy=nm`): exactly N of every M consecutive input
weights kept at each output channel, the largest |w| among the survivors, tfmot's block layout,
the layers left dense, refusals before training, and a tiny level loop and export end to end."""
import os

import numpy as np
import pytest

from lth_tf import io, pruning, tickets
from lth_tf.config import (DatasetConfig, ExperimentConfig, PruningConfig, RuntimeConfig, TrainingConfig)
from lth_tf.validation import validate
from lth_tf.errors import ConfigError, UserError
from lth_tf.lottery import BranchFiles, LotteryExperiment, preflight
from lth_tf.pruning import STRATEGIES, Mask, PruneRequest

RNG = np.random.default_rng(0)
# Keras layouts: Conv2D [h, w, in, out], Dense [in, out]; every input dimension a multiple of 4.
WEIGHTS = {"conv/kernel": RNG.normal(size=(3, 3, 8, 6)), "fc/kernel": RNG.normal(size=(12, 5)),
           "output/kernel": RNG.normal(size=(8, 3))}
KINDS = {"conv/kernel": "conv", "fc/kernel": "fc", "output/kernel": "output"}
RATES = {name: 0.2 for name in WEIGHTS}


def _blocks(array, m):
  """Every block, written out: m consecutive entries along the input axis (the second to last)
  at one output channel and one kernel position, as rows."""
  rows = []
  for index in np.ndindex(*array.shape[:-2], array.shape[-1]):
    column = array[index[:-1] + (slice(None), index[-1])]
    rows.extend(column[start:start + m] for start in range(0, len(column), m))
  return np.array(rows)


def _nm(weights=WEIGHTS, mask=None, n=2, m=4, **kwargs):
  kwargs.setdefault("layer_rates", RATES)
  mask = Mask.ones_like(weights) if mask is None else mask
  return STRATEGIES.get("nm")(PruneRequest(weights, mask, options={"nm": (n, m)}, kinds=KINDS, **kwargs))


@pytest.mark.parametrize("n,m", [(2, 4), (1, 4), (3, 4), (2, 8)])
def test_every_block_keeps_exactly_n_of_the_largest_magnitudes(n, m):
  weights = {name: w for name, w in WEIGHTS.items() if w.shape[-2] % m == 0}
  mask = _nm(weights, n=n, m=m)
  for name, w in weights.items():
    kept, magnitude = _blocks(mask[name], m), _blocks(np.abs(w), m)
    assert (kept.sum(axis=1) == n).all(), name
    smallest_kept = np.where(kept, magnitude, np.inf).min(axis=1)
    largest_dropped = np.where(kept, -np.inf, magnitude).max(axis=1)
    assert (smallest_kept >= largest_dropped).all(), name
    assert mask[name].mean() == pytest.approx(n / m)


@pytest.mark.parametrize("n,m", [(2, 4), (1, 4)])
@pytest.mark.parametrize("shape", [(12, 5), (3, 3, 8, 6)])
def test_the_mask_is_tfmots_m_by_n_mask(shape, n, m):
  # tfmot's rule on Dense and Conv2D kernels (its pair counts the zeros: (m - n, m)).
  from tensorflow_model_optimization.python.core.sparsity.keras import pruning_utils
  from lth_tf.compat import tf
  weights = RNG.normal(size=shape).astype(np.float32)
  prepared = pruning_utils.weights_rearrange(tf.constant(weights))
  theirs = pruning_utils.m_by_n_sparsity_mask_prepare(
      pruning_utils.generate_m_by_n_mask(prepared, (m - n, m)), tf.TensorShape(shape))
  ours = _nm({"fc/kernel": weights}, n=n, m=m, layer_rates={"fc/kernel": 0.5})["fc/kernel"]
  np.testing.assert_array_equal(ours, theirs.numpy().astype(bool))


def test_ties_go_to_the_earlier_input_and_the_mask_repeats():
  weights = {"fc/kernel": np.array([[1.0, -2.0], [-1.0, 2.0], [1.0, -2.0], [-1.0, 2.0]])}
  mask = _nm(weights, layer_rates={"fc/kernel": 0.5})
  np.testing.assert_array_equal(mask["fc/kernel"], [[True, True], [True, True],
                                                    [False, False], [False, False]])
  assert _nm() == _nm()


def test_a_pruned_mask_only_shrinks_and_never_revives_a_weight():
  previous = {name: RNG.random(w.shape) < 0.6 for name, w in WEIGHTS.items()}
  # The pruned weights are the largest: only the rule can keep them pruned.
  weights = {name: np.where(previous[name], w, 100.0) for name, w in WEIGHTS.items()}
  mask = _nm(weights, Mask.from_dict(previous))
  assert mask.is_subset_of(Mask.from_dict(previous))
  for name, w in weights.items():
    kept, alive, magnitude = (_blocks(a, 4) for a in (mask[name], previous[name], np.abs(w)))
    assert (kept.sum(axis=1) == np.minimum(alive.sum(axis=1), 2)).all(), name
    smallest_kept = np.where(kept, magnitude, np.inf).min(axis=1)
    largest_dropped = np.where(alive & ~kept, magnitude, -np.inf).max(axis=1)
    assert (smallest_kept >= largest_dropped).all(), name


def test_layers_it_cannot_block_stay_dense_and_are_named():
  weights = {"stem/kernel": RNG.normal(size=(3, 3, 3, 8)), "dw/kernel": RNG.normal(size=(3, 3, 8, 1)),
             "fc/kernel": RNG.normal(size=(8, 4)), "output/kernel": RNG.normal(size=(4, 2))}
  kinds = {"stem/kernel": "stem", "dw/kernel": "depthwise", "fc/kernel": "fc",
           "output/kernel": "output"}
  rates = {"stem/kernel": 0.1, "dw/kernel": 0.1, "fc/kernel": 0.2, "output/kernel": 0.0}
  request = PruneRequest(weights, Mask.ones_like(weights), rates, kinds=kinds)
  mask = STRATEGIES.get("nm")(request)
  assert mask["stem/kernel"].all() and mask["dw/kernel"].all() and mask["output/kernel"].all()
  assert mask["fc/kernel"].mean() == 0.5
  notes = pruning.policy.strategy(PruningConfig(strategy="nm")).check(request)
  assert len(notes) == 2
  assert "stem/kernel dense: its 3 inputs are not a multiple of 4" in notes[0]
  assert "dw/kernel dense: a depthwise kernel" in notes[1]


@pytest.mark.parametrize("weights,rates", [
    ({"stem/kernel": np.ones((3, 3, 3, 8))}, {"stem/kernel": 0.1}),  # 3 inputs
    ({"fc/kernel": np.ones((8, 4))}, {"fc/kernel": 0.0}),  # the policy prunes nothing
])
def test_a_model_it_can_prune_no_layer_of_is_refused(weights, rates):
  request = PruneRequest(weights, Mask.ones_like(weights), rates)
  with pytest.raises(ConfigError, match="no layer of the model can be pruned 2:4"):
    pruning.policy.strategy(PruningConfig(strategy="nm")).check(request)


def test_global_scope_prunes_the_global_set_only():
  mask = _nm(global_layers=("conv/kernel",), layer_rates={})
  assert mask["conv/kernel"].mean() == 0.5
  assert mask["fc/kernel"].all() and mask["output/kernel"].all()


# ---- the policy and the config ----------------------------------------------------------------

@pytest.mark.parametrize("text", ["4:2", "2:2", "0:4", "2-4", "a:4", "2:4:8", ""])
def test_a_bad_pattern_is_refused(text):
  with pytest.raises(ConfigError, match="nm must be N:M with 1 <= N < M"):
    validate(ExperimentConfig(pruning=PruningConfig(strategy="nm", options=(("nm", text),))))


@pytest.mark.parametrize("pruning_config,message", [
    (PruningConfig(options=(("nm", "1:4"),)), "--nm is read by --pruning_strategy=nm only"),
    (PruningConfig(strategy="nm", levels=2), "give --levels=1"),
    (PruningConfig(strategy="nm", levels=3, mode="one_shot"), "give --levels=1"),
])
def test_incompatible_options_are_refused(pruning_config, message):
  with pytest.raises(ConfigError, match=message):
    pruning.check_config(pruning_config)


def test_the_pattern_field_at_its_default_keeps_every_hash():
  assert ExperimentConfig(pruning=PruningConfig(options=())).experiment_hash() == "ec75416aa5cf"
  # The hash of `--nm=3:8` from when `nm` was a field of PruningConfig: the option, declared by
  # the strategy, is hashed as that field was.
  assert ExperimentConfig(pruning=PruningConfig(strategy="nm", levels=1, options=(
      ("nm", "3:8"),))).experiment_hash() == "018e94898772"
  assert (ExperimentConfig(pruning=PruningConfig(strategy="nm", options=(("nm", "1:4"),))).experiment_hash()
          != ExperimentConfig(pruning=PruningConfig(strategy="nm")).experiment_hash())


def test_the_option_is_a_flag_a_keyword_and_a_key_of_its_own():
  """Declared in the strategy's module alone, `nm` reads and writes as a field of its own:
  `config.json` (old files with `"nm": "2:4"` included), the Python API's keywords, the flags."""
  from lth_tf import flags as lth_flags  # pylint: disable=import-outside-toplevel
  from lth_tf.config_codec import with_fields  # pylint: disable=import-outside-toplevel
  config = with_fields(ExperimentConfig(), pruning_strategy="nm", levels=1, nm="1:4")
  assert config.pruning.options == (("nm", "1:4"),) and config.pruning.option("nm") == "1:4"
  written = config.to_dict()["pruning"]
  assert written["nm"] == "1:4" and "options" not in written
  assert ExperimentConfig.from_dict(config.to_dict()) == config
  old = ExperimentConfig().to_dict()
  old["pruning"]["nm"] = "2:4"  # what every config.json held while nm was a field
  assert ExperimentConfig.from_dict(old) == ExperimentConfig()
  assert with_fields(config, nm="2:4").pruning.options == ()
  with pytest.raises(ConfigError, match="unknown PruningConfig fields: mn"):
    ExperimentConfig.from_dict(dict(old, pruning=dict(old["pruning"], mn="1:4")))
  lth_flags.define_flags()
  try:
    lth_flags.FLAGS(["x", "--pruning_strategy=nm", "--levels=1", "--nm=1:4"])
    assert lth_flags.config_from_flags() == config
    assert "--nm=1:4" in lth_flags.config_to_flags(config).splitlines()
  finally:
    lth_flags.FLAGS.unparse_flags()


def test_a_search_asks_for_no_more_levels_than_the_pattern_takes():
  assert pruning.level_limit(PruningConfig(strategy="nm"), 5) == 1
  assert pruning.level_limit(PruningConfig(), 5) == 5


def test_the_invert_branch_is_refused_for_a_strategy_without_scores():
  config = ExperimentConfig(pruning=PruningConfig(strategy="nm", levels=1, branches=("invert",)))
  with pytest.raises(UserError, match="branch 'invert' needs the pruning strategy's scores"):
    preflight.check_strategy(config, ("ticket", "invert"))


# ---- the level loop and export ----------------------------------------------------------------

def _config(root, **pruning_fields):
  return ExperimentConfig(
      dataset=DatasetConfig(name="synthetic", validation_size=500),
      training=TrainingConfig(iterations=40, eval_every=20, batch_size=50),
      pruning=PruningConfig(strategy="nm", rewind_iteration=10, **pruning_fields),
      runtime=RuntimeConfig(root_dir=str(root), data_dir=str(root), progress=False))


@pytest.mark.parametrize("fields", [dict(levels=2), dict(levels=1, options=(("nm", "4:4"),)),
                                    dict(levels=1, output_rate=0.0, fc_rate=0.0)])
def test_the_level_loop_refuses_before_anything_is_written(tmp_path, fields):
  with pytest.raises(ConfigError):
    LotteryExperiment(_config(tmp_path / "runs", **fields), log=lambda line: None)
  assert not os.path.exists(tmp_path / "runs")


@pytest.fixture(scope="module")
def found(tmp_path_factory):
  root = tmp_path_factory.mktemp("nm")
  experiment = LotteryExperiment(_config(root / "runs", levels=1), log=lambda line: None)
  experiment.run()
  return experiment, root


def test_level_1_is_the_2_4_mask_of_the_trained_weights_and_stays_2_4(found):
  experiment, _ = found
  level0 = io.read_arrays(BranchFiles(experiment.layout.branch_dir(0, 0, "ticket")).final_weights)
  files = BranchFiles(experiment.layout.branch_dir(0, 1, "ticket"))
  mask = Mask.from_dict(io.read_arrays(files.mask))
  final = io.read_arrays(files.final_weights)
  assert set(mask) == {"fc1/kernel", "fc2/kernel", "output/kernel"}
  for name in mask:
    kept = _blocks(mask[name], 4)
    assert (kept.sum(axis=1) == 2).all(), name
    # Chosen from the dense network's trained weights: the largest |w| of every block.
    magnitude = _blocks(np.abs(level0[name]), 4)
    assert (np.where(kept, magnitude, np.inf).min(axis=1)
            >= np.where(kept, -np.inf, magnitude).max(axis=1)).all()
    # After training through the level: pruned weights exactly zero, the kept ones trained.
    assert np.all(final[name][~mask[name]] == 0.0)
    assert np.count_nonzero(final[name][mask[name]]) == int(mask[name].sum())


@pytest.mark.parametrize("quantize", ["none", "int8"])
def test_a_2_4_ticket_exports_and_its_layers_are_called_2_4(found, tmp_path, quantize):
  # What `lth export` converts (the client model of the trained ticket), in this process; the
  # export command itself, with its parity checks and timings, runs in benchmarks/nm_latency.py.
  from lth_tf.export import formats, inference, tflite_sparse, xnnpack
  experiment, _ = found
  ticket = tickets.read(tickets.save(experiment.layout.directory, 0, 1, str(tmp_path / "t")))
  client = inference.inference_model(tickets.build_model(ticket, trained=True), ticket.mean,
                                     ticket.std)
  images = RNG.uniform(0, 255, size=(8, 28, 28, 1)).astype(np.float32)
  blob = formats.tflite_bytes(client, quantize, images)
  nonzero = sum(tflite_sparse.kernel_nonzeros(blob).values())
  assert nonzero == ticket.mask.num_remaining() if quantize == "none" else (
      0.99 * ticket.mask.num_remaining() <= nonzero <= ticket.mask.num_remaining())
  rows = xnnpack.analyse(blob)
  assert [(row.op, row.structure) for row in rows] == [("FULLY_CONNECTED", "2:4")] * 3
  for row in rows:
    assert row.reason.startswith("2:4 structured: no LiteRT CPU kernel") and row.runs_here == "dense"
  assert "2:4 structured" in xnnpack.table(rows)


def test_the_structure_is_read_from_a_kernels_zeros():
  from lth_tf.export.xnnpack import nm_structure
  kernel = RNG.normal(size=(6, 16))  # TFLite layout [out, in]
  two_four = kernel * np.tile([1, 0, 0, 1], (6, 4))
  assert nm_structure(two_four) == "2:4"
  assert nm_structure(kernel * np.tile([1, 0, 0, 0, 0, 0, 0, 0], (6, 2))) == "1:8"
  assert nm_structure(kernel) == ""  # dense
  assert nm_structure(kernel * (RNG.random(kernel.shape) < 0.5)) == ""  # unstructured 50%
  sparse = RNG.normal(size=(64, 64)) * (RNG.random((64, 64)) < 0.1)
  assert nm_structure(sparse) == ""  # unstructured 10%: at most 2 of 4 in most blocks, by chance
  # Whole output channels pruned: 2 of every 4 along the outputs, none along the inputs.
  assert nm_structure(RNG.normal(size=(8, 4)) * np.tile([[1], [0], [0], [1]], (2, 4))) == ""
  rounded = two_four.copy()
  rounded[0, 0] = 0.0  # int8 rounds a kept weight to zero now and then
  assert nm_structure(rounded) == "2:4"
