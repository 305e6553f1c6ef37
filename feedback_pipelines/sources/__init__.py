"""Input adapters onto the landing-zone records, and the synthetic generator."""
