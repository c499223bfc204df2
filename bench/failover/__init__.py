"""Failover bench: our one-host pool against the multi-host pools of SQLAlchemy and psycopg."""
