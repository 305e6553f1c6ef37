"""How assets describe what they wrote in the Dagster UI."""

import dagster as dg
import pandas as pd


def markdown_table(df: pd.DataFrame) -> dg.MetadataValue:
    """A preview of rows as a Markdown table (or "_no rows_")."""
    return dg.MetadataValue.md(df.to_markdown(index=False) if len(df) else "_no rows_")
