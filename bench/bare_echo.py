"""A bare ASGI app: WebSocket echo and GET /healthz. daphne's ceiling in the benchmark."""


async def app(scope, receive, send) -> None:
    """Echo every text frame; answer any HTTP request with {"status":"ok"}."""
    if scope["type"] == "websocket":
        while True:
            message = await receive()
            if message["type"] == "websocket.connect":
                await send({"type": "websocket.accept"})
            elif message["type"] == "websocket.receive":
                await send({"type": "websocket.send", "text": message.get("text")})
            else:
                return
    elif scope["type"] == "http":
        while (await receive()).get("more_body"):
            pass
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"15")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"status":"ok"}'})
