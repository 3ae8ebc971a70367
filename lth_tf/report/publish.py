"""Where a report is written (`lth report`, `lth masks compare`): its `--out` directory, replaced
whole by the files of one report."""
import os
from typing import Callable, Dict

from lth_tf import io
from lth_tf.errors import UserError


# What a report directory holds (`lth report`, `lth masks compare`): an `--out` holding anything
# else is not replaced.
REPORT_FILES = (".md", ".csv", ".png")


def check_out(out_dir: str) -> None:
  """Refuses an `--out` that is a file, or a directory holding anything but an earlier report's
  files (it is replaced whole)."""
  if os.path.exists(out_dir) and not os.path.isdir(out_dir):
    raise UserError(f"--out {out_dir} exists and is not a directory")
  held = sorted(os.listdir(out_dir)) if os.path.isdir(out_dir) else []
  foreign = [name for name in held if not name.endswith(REPORT_FILES)
             or not os.path.isfile(os.path.join(out_dir, name))]
  if foreign:
    raise UserError(f"--out {out_dir} holds files that no report writes ({', '.join(foreign[:3])}"
                    f"{', ...' if len(foreign) > 3 else ''}); a report replaces its directory "
                    "whole: choose a new or empty directory, or an earlier report's")


def publish(out_dir: str, write: Callable[[str], Dict[str, str]]) -> Dict[str, str]:
  """Runs `write(directory)` on a staging directory that then replaces `out_dir` whole
  (`io.published_directory`): concurrent or killed reports never leave one report's figures
  under another's text. Returns `write`'s paths as they are in `out_dir`."""
  check_out(out_dir)
  out = os.path.abspath(out_dir)
  with io.published_directory(out) as staging:
    written = write(staging)
  return {name: os.path.join(out, os.path.relpath(path, staging)) for name, path in written.items()}
