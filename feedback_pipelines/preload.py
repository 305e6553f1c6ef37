"""Imported by the multiprocess executor's fork server: the project and its daily job, once."""

from feedback_pipelines.definitions import daily_pipeline_job

daily_pipeline_job()
