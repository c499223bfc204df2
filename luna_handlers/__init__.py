"""luna-handlers: handlers and verifiers of LUNA PLATFORM 5 over PostgreSQL or Oracle."""

__version__ = "0.1.0"
