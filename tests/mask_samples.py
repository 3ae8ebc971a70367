"""Masks for the mask-analytics tests: random boolean masks with exact counts, labelled as
`lth masks compare` labels the masks it reads."""
import numpy as np

from lth_tf.analysis import masks as masks_lib
from lth_tf.pruning.mask import Mask


def random_mask(rng, shape, keep):
  """A boolean array of `shape` with exactly `keep` True entries, placed by `rng`."""
  flat = np.zeros(int(np.prod(shape)), bool)
  flat[rng.permutation(flat.size)[:keep]] = True
  return flat.reshape(shape)


def labelled(name, arrays, experiment="e", replicate=0, level=0, branch="ticket"):
  """`arrays` (layer name to boolean array) as the mask of one branch of one experiment."""
  return masks_lib.LabelledMask(experiment, replicate, level, branch, Mask.from_dict(arrays), name)
