"""Dagster ConfigurableResource classes: settings, warehouse, vector store, embedder, sources."""
