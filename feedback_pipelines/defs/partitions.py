"""The one daily partitioning shared by every asset: the partition key is the day `ds`."""

import dagster as dg

from feedback_pipelines import config

daily_partitions = dg.DailyPartitionsDefinition(start_date=config.start_date(), timezone="UTC")

#: Lineage of the assets that read a trailing window: the UI shows the 14 days before a day as
#: its upstream. Lineage only: the window actually read is `settings.window_days` (default 14).
WINDOW_MAPPING = dg.TimeWindowPartitionMapping(start_offset=-13, end_offset=0)
