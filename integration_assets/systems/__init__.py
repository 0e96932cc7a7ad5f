"""One client resource per external system, written against the system's real protocol."""
