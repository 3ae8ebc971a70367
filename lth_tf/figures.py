"""Figures written to files, without touching the process's matplotlib backend.

A figure is a `matplotlib.figure.Figure` rendered by its own Agg canvas, not a pyplot figure:
importing lth_tf (its report, `lth stability`, the Python API) never calls `matplotlib.use`,
so a notebook's inline plots keep showing, and no figure of ours is left open in pyplot.
"""
import os
from typing import List

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lth_tf import io


def new(rows: int = 1, columns: int = 1, **options):
  """(figure, axes) as `pyplot.subplots` gives them, on an Agg canvas of the figure's own."""
  figsize = options.pop("figsize", None)
  figure = Figure(figsize=figsize)
  FigureCanvasAgg(figure)
  return figure, figure.subplots(rows, columns, **options)


def colors() -> List[str]:
  """The colour cycle of the current style."""
  return matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]


def save(figure, path: str) -> str:
  """Writes the figure as PNG (atomically) and returns the absolute path."""
  figure.tight_layout()
  with io.atomic_path(path) as tmp:
    figure.savefig(tmp, format="png", dpi=120)
  return os.path.abspath(path)
