"""Upstream calls with httpx, which runs on asyncio and on Trio alike."""

from __future__ import annotations

import httpx

from gateway_core import UpstreamError
from gateway_core.ports import UpstreamRequest, UpstreamResponse

__all__ = ["HttpxUpstream"]


class HttpxUpstream:
    """Upstream calls through one pooled httpx transport.

    The gateway uses ``httpx.AsyncHTTPTransport`` directly rather than ``httpx.AsyncClient``:
    a proxy wants none of the client's layer (default headers, cookies, redirects, URL merging),
    and skipping it saves about a tenth of httpx's CPU per request (measured in
    ``docs/results.md``). The pool is httpcore's; it scans every connection for every waiting
    request, so its CPU cost grows with ``GATEWAY_UPSTREAM_POOL_SIZE`` — but slow upstreams need
    connections: the sizing trade-off is measured in ``docs/results.md``.
    """

    def __init__(self, pool_size: int) -> None:
        self._transport = httpx.AsyncHTTPTransport(
            limits=httpx.Limits(max_connections=pool_size, max_keepalive_connections=pool_size),
            trust_env=False,
            retries=0,  # the core decides what may be retried
        )

    async def send(self, request: UpstreamRequest, *, max_body: int) -> UpstreamResponse:
        """Send one request; translate httpx's exceptions into UpstreamError."""
        # No timeout extension: the core's deadline governs every call, and cancels it.
        outgoing = httpx.Request(
            request.method, request.url, headers=request.headers, content=request.body
        )
        try:
            answer = await self._transport.handle_async_request(outgoing)
            try:
                body = bytearray()
                async for chunk in answer.stream:  # type: ignore[union-attr]
                    body += chunk
                    if len(body) > max_body:
                        raise UpstreamError("too_large", sent=True)
            finally:
                await answer.aclose()
        except httpx.ConnectError as exc:
            raise UpstreamError("connect", sent=False, detail=str(exc)) from exc
        except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError) as exc:
            raise UpstreamError("reset", sent=True, detail=str(exc)) from exc
        except httpx.HTTPError as exc:
            raise UpstreamError("protocol", sent=True, detail=str(exc)) from exc
        headers = [
            (n.decode("latin-1").lower(), v.decode("latin-1")) for n, v in answer.headers.raw
        ]
        return UpstreamResponse(answer.status_code, headers, bytes(body))

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._transport.aclose()
