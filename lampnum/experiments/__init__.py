"""Experiment grids over precision policies and LAMP rules on GPT-2: cells, execution, results, figures.

- :mod:`~lampnum.experiments.grid`: a :class:`Cell` (one configuration) and :func:`expand` (a grid of them);
- :mod:`~lampnum.experiments.datasets`: token sets (token files, text files, shuffled tokens) and their
  cached float64 reference logits;
- :mod:`~lampnum.experiments.runner`: running cells in local processes or on a Dask cluster, resumable;
- :mod:`~lampnum.experiments.results`: rows as JSON lines, CSV and JSON;
- :mod:`~lampnum.experiments.paper`: the LAMP paper's grid;
- :mod:`~lampnum.experiments.figures`: matplotlib figures of a results table.
"""

from __future__ import annotations

from lampnum.experiments.grid import Cell, expand
from lampnum.experiments.runner import run_cell, run_grid

__all__ = ["Cell", "expand", "run_cell", "run_grid"]
