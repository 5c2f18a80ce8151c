"""daphne: refuse an oversized request body before reading it, as uvicorn does.

Twisted reads a whole request body (spooling a large one to a temporary file) before
daphne hands the request to the application, so the ASGI wrapper (project/body_limit.py)
would answer 413 only after the last byte. Here daphne's request answers 413 as soon as
the declared Content-Length is over the limit (whatever its digits), or a chunked body
passes it, and closes the connection: the rest is never read.
"""

from daphne.http_protocol import WebRequest

from project.body_limit import limit_for, too_large_body

_got_length = WebRequest.gotLength
_handle_content_chunk = WebRequest.handleContentChunk


def refuse(request: WebRequest, limit: int) -> None:
    """Write the 413 on the connection and close it, without reading further."""
    request.body_refused = True
    body = too_large_body(limit)
    request.channel.transport.write(
        b"HTTP/1.1 413 Content Too Large\r\n"
        b"Content-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n"
        b"Connection: close\r\n\r\n" + body
    )
    request.channel.loseConnection()


def got_length(self: WebRequest, length: int | None) -> None:
    """Twisted knows the declared length (None: chunked): refuse it now if too long."""
    # The request line, as Twisted's channel holds it until the body is in.
    method = getattr(self.channel, "_command", b"").decode("latin-1")
    target = getattr(self.channel, "_path", b"").split(b"?", 1)[0].decode("latin-1")
    self.body_limit = limit_for(method, target)
    self.body_received = 0
    self.body_refused = False
    if length is not None and length > self.body_limit:
        refuse(self, self.body_limit)
        return
    _got_length(self, length)


def handle_content_chunk(self: WebRequest, data: bytes) -> None:
    """Count a chunk of the body; refuse the request once it passes the limit."""
    if getattr(self, "body_refused", False):
        return
    self.body_received = getattr(self, "body_received", 0) + len(data)
    if self.body_received > getattr(self, "body_limit", self.body_received):
        refuse(self, self.body_limit)
        return
    _handle_content_chunk(self, data)


def install() -> None:
    """Bound daphne's request bodies (idempotent; harmless under another server)."""
    WebRequest.gotLength = got_length
    WebRequest.handleContentChunk = handle_content_chunk
