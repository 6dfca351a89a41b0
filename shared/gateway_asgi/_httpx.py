"""Upstream calls with httpx, which runs on asyncio and on Trio alike."""

from __future__ import annotations

import httpx

from gateway_core import UpstreamError
from gateway_core.ports import UpstreamRequest, UpstreamResponse

__all__ = ["HttpxUpstream"]


class HttpxUpstream:
    """Upstream calls over one pooled ``httpx.AsyncClient``."""

    def __init__(self, pool_size: int) -> None:
        self._client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=pool_size, max_keepalive_connections=pool_size),
            timeout=httpx.Timeout(None),  # the core's deadline governs every call
            follow_redirects=False,
            trust_env=False,
        )
        # httpx adds Accept-Encoding and friends by default; a proxy forwards only the client's.
        for name in list(self._client.headers):
            del self._client.headers[name]

    async def send(self, request: UpstreamRequest, *, max_body: int) -> UpstreamResponse:
        """Send one request; translate httpx's exceptions into UpstreamError."""
        try:
            async with self._client.stream(
                request.method, request.url, headers=request.headers, content=request.body
            ) as answer:
                body = bytearray()
                async for chunk in answer.aiter_raw():
                    body += chunk
                    if len(body) > max_body:
                        raise UpstreamError("too_large", sent=True)
                headers = [
                    (n.decode("latin-1").lower(), v.decode("latin-1"))
                    for n, v in answer.headers.raw
                ]
                return UpstreamResponse(answer.status_code, headers, bytes(body))
        except httpx.ConnectError as exc:
            raise UpstreamError("connect", sent=False, detail=str(exc)) from exc
        except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError) as exc:
            raise UpstreamError("reset", sent=True, detail=str(exc)) from exc
        except httpx.HTTPError as exc:
            raise UpstreamError("protocol", sent=True, detail=str(exc)) from exc

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._client.aclose()
