"""Scale bench: the service over 10,000 and over 1,000,000 handlers, side by side."""
