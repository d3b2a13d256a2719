"""Reusable neural-network layers and paper networks (pure ``nn.Module`` s, shapes in docstrings).

    AnoGraphDGI   Ano-Graph's Deep Graph Infomax network (:mod:`stgraph.nn.dgi`)
    STMAENet, DissociationNet   the pixel autoencoders (:mod:`stgraph.nn.pixel_autoencoders`),
                  built from :mod:`stgraph.nn.autoencoder_layers` (memory pools, variance
                  attention, deep K-means, pixel-shuffle decoder, patch discriminator)
"""
from stgraph.nn.dgi import AnoGraphDGI

__all__ = ["AnoGraphDGI"]
