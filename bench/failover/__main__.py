"""``python -m bench.failover``: run the failover bench and print its report."""

from bench.failover.run import main

main()
