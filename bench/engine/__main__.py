"""Entry point of ``python -m bench.engine``."""

from bench.engine.run import main

main()
