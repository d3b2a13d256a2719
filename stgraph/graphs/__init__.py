"""Graphs built from detections: the Ano-Graph object spatio-temporal graph, its sliding window for
streams, and networkx conversion.

    ObjectGraphBuilder(...).build(frames)   list[Detections] -> torch_geometric.data.Data
    SlidingWindowGraph(builder, size).push  one Detections -> Data of the last ``size`` frames
    to_networkx / from_networkx             Data <-> networkx.DiGraph (networkx imported lazily)
"""
from stgraph.graphs.convert import from_networkx, to_networkx
from stgraph.graphs.object_graph import EdgeBlock, GraphBuildError, ObjectGraphBuilder
from stgraph.graphs.window import SlidingWindowGraph

__all__ = ["EdgeBlock", "GraphBuildError", "ObjectGraphBuilder", "SlidingWindowGraph",
           "from_networkx", "to_networkx"]
