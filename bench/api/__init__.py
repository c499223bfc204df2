"""HTTP API bench: luna-handlers against a thin floor, PostGraphile 4 and pgbench (README.md)."""
