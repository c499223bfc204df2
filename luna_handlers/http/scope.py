"""Keys the HTTP protocol adds to a request's ASGI scope for the middleware to read."""

from __future__ import annotations

#: True in the scope of a request whose client went away before its answer was complete
#: (the access log and metrics count it as 499, nginx's "client closed request").
CLIENT_GONE = "luna.client_gone"
