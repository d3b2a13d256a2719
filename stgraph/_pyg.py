"""Import torch_geometric once, without the deprecation notice its import makes torch print.

torch_geometric 2.8 calls ``torch.jit.script`` while it is imported
(``torch_geometric/nn/pool/select/base.py``), and torch 2.14 answers with a ``FutureWarning``
("`torch.jit.script` is deprecated") that a user of stgraph can do nothing about. Every stgraph
module that uses torch_geometric imports this module first::

    import stgraph._pyg  # noqa: F401  (before any ``from torch_geometric ... import``)

The filter is active only while torch_geometric itself is imported (``warnings.catch_warnings``),
so the user's own ``torch.jit.script`` calls, and every other warning, still show.
"""
from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=r".*`torch\.jit\.script` is deprecated",
                            category=FutureWarning)
    import torch_geometric  # noqa: F401
