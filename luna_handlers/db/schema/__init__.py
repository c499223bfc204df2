"""The schema: table models, SQL types, Alembic migrations and the offline DDL scripts."""
