"""Entry point of ``python -m bench.scale``."""

from bench.scale.run import main

main()
