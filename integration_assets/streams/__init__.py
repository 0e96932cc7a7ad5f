"""Pure functions for the streams: parsing, validation, diffing, balances. No Dagster imports here."""
