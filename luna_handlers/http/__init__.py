"""The HTTP edge: uvicorn's protocol with timeouts, size and connection limits."""
