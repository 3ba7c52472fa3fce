"""asv benchmarks for arraybragg (see docs/benchmarks.md)."""
