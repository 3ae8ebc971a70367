"""TFDS's digital-pathology datasets, registered by their TFDS names, with the training and test
splits each one is read with (the non-natural targets of Sabatelli, Kestemont & Geurts (2020)
that TFDS has; see the README's transfer presets).

- `colorectal_histology`: 5,000 tissue patches of 150x150 pixels, 8 classes; TFDS has only a
  `train` split, so its first 80% (TFDS's deterministic slicing `train[:80%]`, 4,000 images)
  is the training split and the last 20% (1,000) the test split.
- `patch_camelyon`: 96x96 lymph-node patches, 2 classes (metastatic tissue or not); its own
  `train` (262,144) and `test` (32,768) splits.
- `malaria`: 27,558 blood-smear cell images of varying size, 2 classes (parasitised or not);
  only a `train` split, divided 80% / 20% as above. Its images must be resized as they are
  read: give `--image_size`.
The validation set is held out of the training split as for every dataset (`--validation_size`).
TFDS downloads them where there is internet (`lth data install --tfds_datasets=NAME`).
"""
import functools
from typing import Dict, Tuple

from lth_tf.data import tfds_source
from lth_tf.data.base import SOURCES, RawData

# name -> (training split, test split), in TFDS's split syntax.
SPLITS: Dict[str, Tuple[str, str]] = {
    "colorectal_histology": ("train[:80%]", "train[80%:]"),
    "patch_camelyon": ("train", "test"),
    "malaria": ("train[:80%]", "train[80%:]"),
}


def read(name: str, data_dir: str, image_size=(), splits: Tuple[str, str] = ("train", "test")
         ) -> RawData:
  """The TFDS dataset `name` with its `splits`, at `image_size` if given."""
  return tfds_source.read(name, data_dir, image_size, splits)


for _name, _splits in SPLITS.items():
  SOURCES.add(_name, functools.partial(read, splits=_splits))
