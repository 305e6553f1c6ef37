"""Topics that stay put: rolling-window clustering with readable labels and stable ids.

Small stages in the manner of BERTopic (reduce, fit, assign, labels, lineage), pure functions
over numpy and pandas; `cluster_window` runs them all for one window. No Dagster here: the asset
in `feedback_pipelines.defs.clustering` wires this to the warehouse and the vector store.
"""

from feedback_pipelines.clustering.fit import FitConfig, min_cluster_size_for
from feedback_pipelines.clustering.labels import LabelConfig, describe_clusters
from feedback_pipelines.clustering.lineage import assign_stable_ids, match_clusters
from feedback_pipelines.clustering.pipeline import (
    ASSIGNMENT_COLUMNS,
    CLUSTER_COLUMNS,
    ClusteringConfig,
    WindowClusters,
    cluster_window,
    window_growth,
    window_halves,
)
from feedback_pipelines.clustering.reduce import select_reducer

__all__ = [
    "ASSIGNMENT_COLUMNS",
    "CLUSTER_COLUMNS",
    "ClusteringConfig",
    "FitConfig",
    "LabelConfig",
    "WindowClusters",
    "assign_stable_ids",
    "cluster_window",
    "describe_clusters",
    "match_clusters",
    "min_cluster_size_for",
    "select_reducer",
    "window_growth",
    "window_halves",
]
