"""A two-level topic map that stays put: subtopics (about one intent) grouped into themes.

Pure functions over numpy and pandas (no Dagster):

- `context` blends each event's vector with its conversation's (follow-ups name no topic);
- `subtopics` the fine level: kNN spectral space, Ward cut by a size-free height, spherical
  k-means refinement, noise by similarity and margin (no UMAP, no seed that matters);
- `themes` the coarse level: Ward's criterion over the subtopics;
- `registry` day to day: placement on frozen centroids, births from the unplaced pool,
  catch-alls split, duplicates merged;
- `lineage` theme ids followed through their events, `topic_lineage` events, kept shares;
- `labels` c-TF-IDF keyphrases re-ranked by the embedder with MMR, and quotes;
- `llm_labels` optional titles from an OpenAI-compatible endpoint;
- `store` the warehouse tables; `pipeline.cluster_window` runs it all for one window.

The asset in `feedback_pipelines.defs.clustering` wires this to the warehouse and Qdrant.
"""

from feedback_pipelines.clustering.context import session_context
from feedback_pipelines.clustering.labels import LabelConfig, describe_clusters
from feedback_pipelines.clustering.pipeline import (
    ClusteringConfig,
    PreviousDay,
    WindowTopics,
    cluster_window,
    window_growth,
    window_halves,
)
from feedback_pipelines.clustering.registry import RegistryConfig
from feedback_pipelines.clustering.subtopics import SubtopicConfig, fit_window
from feedback_pipelines.clustering.themes import ThemeConfig, merge_themes, themes_of_subtopics
from feedback_pipelines.schema import ASSIGNMENT_COLUMNS, CLUSTER_COLUMNS, TOPIC_COLUMNS

__all__ = [
    "ASSIGNMENT_COLUMNS",
    "CLUSTER_COLUMNS",
    "TOPIC_COLUMNS",
    "ClusteringConfig",
    "LabelConfig",
    "PreviousDay",
    "RegistryConfig",
    "SubtopicConfig",
    "ThemeConfig",
    "WindowTopics",
    "cluster_window",
    "describe_clusters",
    "fit_window",
    "merge_themes",
    "session_context",
    "themes_of_subtopics",
    "window_growth",
    "window_halves",
]
