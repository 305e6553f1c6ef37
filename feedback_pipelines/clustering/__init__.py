"""Topics that stay put: rolling-window clustering with readable labels and stable ids.

Small stages in the manner of BERTopic, pure functions over numpy and pandas (no Dagster):

- `context` blends each event's vector with its conversation's (follow-ups name no topic);
- `fit` samples distinct texts (bounded), HDBSCAN with min_cluster_size scaled to the sample,
  and splits out emerging topics born in the last days;
- `reduce` UMAP on exact neighbours (default) or PCA, fitted on the sample;
- `assign` places every event of the window by its nearest exemplar (noise stays noise);
- `labels` c-TF-IDF keyphrases and representative quotes;
- `lineage` keeps ids from day to day (centroid similarity, Hungarian matching, threshold);
- `llm_labels` optional titles from an OpenAI-compatible endpoint;
- `store` the warehouse tables; `pipeline.cluster_window` runs it all for one window.

The asset in `feedback_pipelines.defs.clustering` wires this to the warehouse and Qdrant.
"""

from feedback_pipelines.clustering.context import session_context
from feedback_pipelines.clustering.fit import FitConfig, min_cluster_size_for
from feedback_pipelines.clustering.labels import LabelConfig, describe_clusters
from feedback_pipelines.clustering.lineage import assign_stable_ids, match_clusters
from feedback_pipelines.clustering.pipeline import (
    ClusteringConfig,
    WindowClusters,
    cluster_window,
    window_growth,
    window_halves,
)
from feedback_pipelines.clustering.reduce import select_reducer
from feedback_pipelines.schema import ASSIGNMENT_COLUMNS, CLUSTER_COLUMNS

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
    "session_context",
    "window_growth",
    "window_halves",
]
