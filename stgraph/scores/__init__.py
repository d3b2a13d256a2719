"""Scores of every method, in one table: :class:`ScoreTable` (object, frame and patch rows, and
optional pixel maps), frame scores, fusion of several methods, and their files.

Modules, along the data flow:

* :mod:`stgraph.scores.table`: the :class:`ScoreTable` and its constructors;
* :mod:`stgraph.scores.frames`: :class:`FrameScores`, reducing rows to frames, smoothing,
  normalisation, :class:`PixelMaps`;
* :mod:`stgraph.scores.fusion`: :func:`fuse` (batch) and :class:`FrameFuser` (streaming);
* :mod:`stgraph.scores.io`: CSV / JSON files, the pixel-map sidecar, the per-frame CSV.
"""
from stgraph.scores.columns import COLUMNS, KINDS, V1_COLUMNS, ScoreTableError
from stgraph.scores.frames import FrameScores, PixelMaps, check_frame_labels, smooth_and_normalize
from stgraph.scores.fusion import FrameFuser, fuse
from stgraph.scores.io import FORMAT_NAME, FORMAT_VERSION, frame_csv_row, object_csv_rows
from stgraph.scores.table import ScoreTable, patch_grid_name

#: Deprecated name for :data:`V1_COLUMNS`, the object-row CSV header of format version 1, which
#: ``stgraph.watch`` still writes (the table reads it as object rows). New code uses
#: :data:`COLUMNS` (``ScoreTable.REQUIRED``) and :func:`object_csv_rows`.
REQUIRED_COLUMNS = V1_COLUMNS

__all__ = ["ScoreTable", "FrameScores", "PixelMaps", "ScoreTableError", "fuse", "FrameFuser",
           "smooth_and_normalize", "check_frame_labels", "patch_grid_name", "object_csv_rows",
           "frame_csv_row",
           "KINDS", "COLUMNS", "V1_COLUMNS", "REQUIRED_COLUMNS", "FORMAT_NAME", "FORMAT_VERSION"]
