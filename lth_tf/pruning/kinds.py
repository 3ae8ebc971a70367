"""Layer kinds: what each prunable weight is (stem, pointwise, depthwise, conv, fc, embedding,
recurrent, attention, output), the
per-layer rate each kind takes, and the kinds each `global_layers` choice ranks together.

Kinds are data: `KINDS` maps a kind to its rate field, and `GLOBAL_SETS` maps a
`--global_layers` choice to the kinds it prunes; every kind outside the chosen set stays dense
under global scope. The finer convolution kinds (stem, pointwise, depthwise) take the
convolution rate, so layerwise pruning and `--global_layers=conv` treat every convolution as
before. `--global_layers=pointwise` prunes only the 1x1 convolutions, leaving the depthwise
convolutions and the first convolution dense: the layers XNNPACK's sparse inference reads
sparse are the 1x1 convolutions, and only those (see `lth_tf.export.xnnpack`).

tfmot's prune registry decides what is wrapped at all: it lists `DepthwiseConv2D` and
`BatchNormalization` as supported with no prunable weight, so both stay dense under every
scope; the `depthwise` kind is for a user's layer that declares its depthwise kernel prunable.

The families of a user's model beyond images take `fc_rate` by default: an embedding table, the
kernel and recurrent kernel of an LSTM, GRU or simple RNN, and the query, key, value and output
projections of attention are matrices multiplied with their input, as a fully-connected layer's
kernel is, and the lottery-ticket work on recurrent and attention networks (Yu et al., ICLR 2020:
LSTM and Transformer language models) prunes their weight matrices by magnitude as it prunes
fully-connected layers. No paper this project reproduces fixes a rate of their own, so none is
invented: they are kinds of their own so that a per-weight rate or `--global_layers=all` reaches
them, and the table `lth find` prints before training says which weights each kind holds.
"""
from typing import Dict

from lth_tf import mechanism


# kind -> the PruningConfig field holding its layerwise rate.
KINDS: Dict[str, str] = {
    "stem": "conv_rate",
    "pointwise": "conv_rate",
    "depthwise": "conv_rate",
    "conv": "conv_rate",
    "fc": "fc_rate",
    "embedding": "fc_rate",
    "recurrent": "fc_rate",
    "attention": "fc_rate",
    "output": "output_rate",
}
CONV_KINDS = frozenset({"stem", "pointwise", "depthwise", "conv"})
# --global_layers choice -> kinds ranked together.
GLOBAL_SETS = {
    "conv": CONV_KINDS,
    "all": frozenset(KINDS),
    "pointwise": frozenset({"pointwise"}),
}


def is_conv(layer) -> bool:
  keras = _keras_of(layer)
  return isinstance(layer, (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D,
                            keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D,
                            keras.layers.SeparableConv1D, keras.layers.SeparableConv2D))


def _keras_of(layer):
  """The Keras module (tf_keras or Keras 3) whose layer classes `layer` is an instance of."""
  return mechanism.of(layer).keras


# Families (`lth_tf.pruning.structure`) that are a kind of their own.
_FAMILY_KINDS = ("embedding", "recurrent", "attention")


def layer_kind(layer, first_conv: bool, family: str = "", classifier: bool = False) -> str:
  """The kind of a prunable layer; `first_conv`: it is the model's first convolution (the one
  that reads the image); `family`: its family in `lth_tf.pruning.structure`; `classifier`: the
  model returns its output (a Dense classifier then is `output`, whatever its name)."""
  keras = _keras_of(layer)
  if layer.name == "output" or (classifier and family == "fc"):
    return "output"
  if family in _FAMILY_KINDS:
    return family
  if isinstance(layer, (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)):
    return "depthwise"
  if is_conv(layer):
    if first_conv:
      return "stem"
    if isinstance(layer, (keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)):
      return "pointwise"  # its pruned weight is the 1x1 pointwise kernel
    if all(k == 1 for k in layer.kernel_size) and getattr(layer, "groups", 1) == 1:
      return "pointwise"
    return "conv"
  return "fc"
