"""The Christmas-peak benchmark harness (`make bench`): see benchmarks/README.md."""
