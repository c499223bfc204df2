"""Entry point of ``python -m bench.api``."""

from bench.api.run import main

main()
