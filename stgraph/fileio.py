"""Atomic file and directory writes: write to a temporary sibling, then rename into place.

A crash or an exception mid-write never leaves a truncated file or a half-written directory
behind: the previous file or directory (if any) stays intact. Every writer in stgraph goes through
:func:`atomic_path` (one file) or :func:`atomic_dir` (a directory written as a whole, e.g. a saved
model: weights and config can never disagree).
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

from detectors.files import atomic_directory, atomic_path  # the one implementation (detectors may
#                                                           not import stgraph)

__all__ = ["atomic_path", "atomic_write_text", "atomic_write_bytes", "atomic_dir",
           "check_output_dir", "check_output_file"]


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding=encoding)
    return Path(path)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)




def check_output_dir(path: str | Path, what: str = "output directory") -> Path:
    """``path`` as a Path, after checking it can become a directory (it is not a file).

    Call it before any work starts, so a bad ``--out`` fails at once, not after training.

    Raises:
        ValueError: ``path`` exists and is not a directory, or its parent exists and is a file.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{what} {path} exists and is not a directory")
    parent = next((p for p in path.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise ValueError(f"{what} {path}: {parent} is a file, not a directory")
    return path


def check_output_file(path: str | Path, what: str = "output file") -> Path:
    """``path`` as a Path, after checking a file can be written there (not a directory).

    Raises:
        ValueError: ``path`` is an existing directory, or its parent exists and is a file.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{what} {path} is a directory; give a file name")
    parent = next((p for p in path.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise ValueError(f"{what} {path}: {parent} is a file, not a directory")
    return path


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """:func:`detectors.files.atomic_directory` after checking ``path`` as an output directory
    (:func:`check_output_dir`): an empty temporary directory next to ``path`` that replaces it as a
    whole on success and is removed on error, leaving ``path`` untouched.

    Raises:
        ValueError: ``path`` exists and is not a directory (checked before the block runs).

    Example:
        >>> with atomic_dir("model") as tmp:                      # doctest: +SKIP
        ...     (tmp / "config.json").write_text("{}")
    """
    path = check_output_dir(path)
    with atomic_directory(path) as tmp:
        yield tmp
