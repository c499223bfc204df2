"""Entry point of ``python -m bench.hostile``."""

from bench.hostile.run import main

main()
