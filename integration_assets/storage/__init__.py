"""Where data rests: the immutable raw log (files) and the warehouse (DuckDB)."""
