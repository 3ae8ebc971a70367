"""The examples `lth export` reads, as a client would feed them (raw pixels, features in their
own units, token ids), and the sample of them a ticket can carry.

- int8 calibration (`--quantize=int8`): `CALIBRATION_EXAMPLES` training inputs drawn with seed 0
  (fewer if the split is smaller);
- the parity check (top-1 agreement with Keras, accuracy): the test inputs and labels, all of
  them when the dataset is read, the first `limit` when they are carried by a ticket.

A ticket saved from an experiment on a `py:` dataset (your own function) carries them
(`tickets.save`, `--carry_examples`), so that exporting it runs no dataset code: a ticket from
someone else need not be trusted to be exported, only its model must be.
"""
import dataclasses
from typing import Dict, Optional, Tuple

import numpy as np

from lth_tf.data.modality import MODALITIES, raw_inputs

CALIBRATION_EXAMPLES = 200
CARRIED_TEST_EXAMPLES = 1000  # `lth tickets save --carry_examples` default
PREFIX = "export/"
_KEYS = ("calibration", "test_inputs", "test_labels")


@dataclasses.dataclass(frozen=True)
class ExportData:
  """What an export reads: raw calibration inputs, raw test inputs and their labels, and where
  they came from (said in the export's table and `check.json`)."""
  calibration: np.ndarray
  test_inputs: np.ndarray
  test_labels: np.ndarray
  source: str

  def arrays(self) -> Dict[str, np.ndarray]:
    """The arrays a ticket stores, by their key in `ticket.npz`."""
    return {PREFIX + key: getattr(self, key) for key in _KEYS}


def from_splits(splits, source: str, limit: Optional[int] = None) -> ExportData:
  """The export's examples from loaded splits; the first `limit` test examples if given."""
  modality = MODALITIES.get(splits.modality)
  rng = np.random.default_rng(0)
  chosen = rng.choice(len(splits.x_train), min(CALIBRATION_EXAMPLES, len(splits.x_train)),
                      replace=False)
  test = slice(None) if limit is None else slice(0, limit)
  return ExportData(
      raw_inputs(modality, splits.x_train[chosen], splits.mean, splits.std),
      raw_inputs(modality, splits.x_test[test], splits.mean, splits.std),
      np.asarray(splits.y_test[test]), source)


def from_arrays(arrays: Dict[str, np.ndarray], input_shape: Tuple[int, ...], num_classes: int,
                source: str) -> Optional[ExportData]:
  """The sample a ticket's arrays carry (None when it carries none), checked against the
  ticket's input shape and class count; a `ValueError` naming what is wrong otherwise."""
  present = [key for key in _KEYS if PREFIX + key in arrays]
  if not present:
    return None
  if len(present) != len(_KEYS):
    raise ValueError(f"the export sample is incomplete (it has {', '.join(present)})")
  calibration, inputs, labels = (arrays[PREFIX + key] for key in _KEYS)
  for name, value in (("calibration", calibration), ("test_inputs", inputs)):
    if value.ndim != len(input_shape) + 1 or tuple(value.shape[1:]) != tuple(input_shape) \
        or not len(value) or value.dtype.kind not in "fiu":
      raise ValueError(f"the export sample's {name} has shape {list(value.shape)} "
                       f"({value.dtype}), not examples of shape {list(input_shape)}")
  if labels.shape != (len(inputs),) or labels.dtype.kind not in "iu" or not (
      (labels >= 0) & (labels < max(num_classes, 2))).all():
    raise ValueError(f"the export sample's labels are not {len(inputs)} class labels in "
                     f"0..{num_classes - 1}")
  return ExportData(calibration, inputs, labels, source)
