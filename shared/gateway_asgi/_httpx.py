"""Upstream calls with httpx, which runs on asyncio and on Trio alike."""

from __future__ import annotations

import math

import httpx

from gateway_core import UpstreamError
from gateway_core.ports import UpstreamRequest, UpstreamResponse

__all__ = ["HttpxUpstream"]


# Connections per httpcore pool. httpcore's pool scans every connection for every waiting
# request, so its CPU cost grows with connections x waiters; several small pools, each request
# sent through the least busy one, keep that scan short (see docs/results.md, "Profile").
SHARD_CONNECTIONS = 4


class HttpxUpstream:
    """Upstream calls through httpx transports: ``pool_size`` connections in small shards.

    The gateway uses ``httpx.AsyncHTTPTransport`` directly rather than ``httpx.AsyncClient``:
    a proxy wants none of the client's layer (default headers, cookies, redirects, URL merging),
    and skipping it saves about a fifth of httpx's CPU per request.
    """

    def __init__(self, pool_size: int) -> None:
        count = max(1, math.ceil(pool_size / SHARD_CONNECTIONS))
        sizes = [pool_size // count + (i < pool_size % count) for i in range(count)]
        self._shards = [
            httpx.AsyncHTTPTransport(
                limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
                trust_env=False,
                retries=0,  # the core decides what may be retried
            )
            for size in sizes
        ]
        self._busy = [0] * count

    async def send(self, request: UpstreamRequest, *, max_body: int) -> UpstreamResponse:
        """Send one request; translate httpx's exceptions into UpstreamError."""
        # No timeout extension: the core's deadline governs every call, and cancels it.
        outgoing = httpx.Request(
            request.method, request.url, headers=request.headers, content=request.body
        )
        shard = min(range(len(self._shards)), key=self._busy.__getitem__)
        self._busy[shard] += 1
        try:
            answer = await self._shards[shard].handle_async_request(outgoing)
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
        finally:
            self._busy[shard] -= 1
        headers = [
            (n.decode("latin-1").lower(), v.decode("latin-1")) for n, v in answer.headers.raw
        ]
        return UpstreamResponse(answer.status_code, headers, bytes(body))

    async def aclose(self) -> None:
        """Close the pooled connections."""
        for shard in self._shards:
            await shard.aclose()
