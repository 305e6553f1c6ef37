"""feedback_pipelines: daily Dagster pipelines over LLM user feedback."""

__version__ = "0.1.0"
