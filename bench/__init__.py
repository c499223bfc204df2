"""Benchmarks of luna-handlers; each subpackage runs with ``python -m bench.<name>``."""
