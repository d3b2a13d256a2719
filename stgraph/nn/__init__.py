"""Reusable neural-network layers shared by several models (none yet: Ano-Graph's encoder is
PyG's ``GCNConv``, see :mod:`stgraph.models.anograph`)."""
