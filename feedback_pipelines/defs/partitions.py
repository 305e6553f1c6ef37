"""The one daily partitioning shared by every asset: the partition key is the day `ds`."""

import dagster as dg

from feedback_pipelines import config

daily_partitions = dg.DailyPartitionsDefinition(start_date=config.start_date(), timezone="UTC")
