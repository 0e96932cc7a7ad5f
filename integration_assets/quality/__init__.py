"""Data-quality machinery: Great Expectations 1.x run directly on DataFrames (no Dagster imports)."""
