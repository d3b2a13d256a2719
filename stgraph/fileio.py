"""Atomic file writes: write to a temporary file in the target folder, then ``os.replace``.

A crash or an exception mid-write never leaves a truncated file behind: the previous file (if
any) stays intact. Every writer in stgraph goes through :func:`atomic_path`.
"""
from __future__ import annotations

from pathlib import Path

from detectors.files import atomic_path  # the one implementation (detectors may not import stgraph)

__all__ = ["atomic_path", "atomic_write_text", "atomic_write_bytes"]


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
