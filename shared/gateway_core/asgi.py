"""The ASGI adapter shared by the two hypercorn services (asyncio and Trio workers).

ASGI is itself framework-neutral: the app awaits only ``receive`` and ``send``. The one thing
it needs from the framework is a race between the handler and the client going away, which
the :class:`~gateway_core.ports.Runtime` port provides.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from functools import partial
from typing import Any

from .gateway import Gateway
from .http import BufferedBody, Request, Response

__all__ = ["AsgiApp"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def _receive_body(receive: Receive, limit: int) -> tuple[bytes | None, bool]:
    """``(body or None if over limit, client disconnected)``; stops reading past ``limit``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None, True
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None, False
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), False


class AsgiApp:
    """``gateway.handle`` as an ASGI 3 application."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in scope["headers"]]
        request = Request(
            method=scope["method"],
            path=scope.get("raw_path", scope["path"].encode()).decode("latin-1").split("?", 1)[0],
            query=scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            client=(scope.get("client") or ("unknown", 0))[0],
            scheme=scope.get("scheme", "http"),
        )
        limit = self.gateway.settings.max_body_bytes
        if request.announces_more_than(limit):
            body: bytes | None = None  # refuse without reading what was announced too large
        else:
            body, gone = await _receive_body(receive, limit)
            if gone:
                return
        request.body_reader = BufferedBody(body)

        async def client_gone() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        runtime = self.gateway.runtime
        response = await runtime.race_disconnect(partial(self.gateway.handle, request), client_gone)
        if response is None:
            return  # the client went away; the handler was cancelled
        await _send(send, response)


async def _send(send: Send, response: Response) -> None:
    headers = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in response.headers]
    headers.append((b"content-length", str(len(response.body)).encode()))
    if response.close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


async def _lifespan(receive: Receive, send: Send) -> None:
    # Start-up and shutdown are the service's, around the server; lifespan is only acknowledged.
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
