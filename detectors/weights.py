"""Weight files: reading a ``torch.save``d state_dict with a one-line error naming the file.

``torch.load(..., weights_only=True)`` fails on a wrong or damaged file with exceptions that do
not say what is wrong: an ``UnpicklingError`` whose advice is to turn off the safe loader (for an
ONNX file given where a ``.pt`` belongs), a bare ``EOFError`` or "unexpected EOF" for a truncated
file, a ``KeyError`` for a text file. :func:`load_torch_state` turns each into a ``ValueError``
that names the file and the likely cause, and never suggests unsafe loading.

torch is imported only when a file is read (``detectors`` stays importable with numpy alone).
"""
from __future__ import annotations

import os
import pickle
import struct
import zipfile
from pathlib import Path
from typing import Any

from detectors.files import require_file

__all__ = ["load_torch_state", "ONNX_SUFFIXES", "describe_unreadable"]

ONNX_SUFFIXES = (".onnx", ".ort")
#: What ``torch.load`` raises for files that are not (complete) torch.save archives.
_TORCH_LOAD_ERRORS = (pickle.UnpicklingError, EOFError, RuntimeError, KeyError, ValueError,
                      OSError, IndexError, struct.error, zipfile.BadZipFile, UnicodeDecodeError,
                      AttributeError, TypeError)


def describe_unreadable(path: Path, exc: BaseException) -> str:
    """A short, user-facing reason why ``torch.load`` could not read ``path``."""
    with open(path, "rb") as handle:
        head = handle.read(4)
    if path.suffix.lower() in ONNX_SUFFIXES:
        return "it is an ONNX model, not a torch state_dict"
    if not head:
        return "the file is empty"
    # torch.save writes a zip archive (legacy files: a pickle stream, protocol 2, b"\x80\x02")
    looks_like_torch = head.startswith(b"PK\x03\x04") or head.startswith(b"\x80\x02")
    if looks_like_torch and isinstance(exc, pickle.UnpicklingError):
        return ("it holds pickled Python objects besides tensors (a whole model saved with "
                "torch.save(model)?); save model.state_dict() instead")
    if looks_like_torch or isinstance(exc, (EOFError, zipfile.BadZipFile)):
        return "the file is truncated or corrupt (copy it again)"
    return "not a file written by torch.save (another format)"


def load_torch_state(path: str | os.PathLike, what: str,
                     error: type[Exception] = ValueError) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)`` with clear errors.

    Args:
        path: the weights file.
        what: what the file should be, for messages (e.g. ``"MobileNetV2 weights file"``).
        error: the exception class raised for an unreadable file (a ``ValueError`` subclass).

    Raises:
        FileNotFoundError: ``path`` is not a file ("<what> not found: <path>").
        error: the file cannot be read as a torch state_dict; one line naming the file and why.
    """
    import torch

    resolved = require_file(path, what)
    try:
        return torch.load(resolved, map_location="cpu", weights_only=True)
    except _TORCH_LOAD_ERRORS as exc:
        raise error(f"cannot read {resolved} as a torch state_dict ({what}): "
                    f"{describe_unreadable(resolved, exc)}") from exc
