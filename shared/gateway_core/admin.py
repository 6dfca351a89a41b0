"""The admin API under ``/_gateway/admin/``: keys and routes, validated, stored, served."""

from __future__ import annotations

import json
import re
import secrets
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import parse_qs

from pydantic import BaseModel

from . import store
from .config import hash_key
from .errors import UniqueViolation
from .http import Request, Response
from .ports import Database
from .problems import problem
from .validation import (
    FieldError,
    InvalidInput,
    KeyCreate,
    KeyUpdate,
    RouteCreate,
    RouteUpdate,
    parse,
)

__all__ = ["AdminApi", "json_response"]

M = TypeVar("M", bound=BaseModel)
_ID = r"(?P<id>[^/]+)"
_NULLABLE = {"routes", "expires_at", "upstream_url", "parts"}


def json_response(
    status: int, body: Any, rid: str, *, headers: Sequence[tuple[str, str]] = ()
) -> Response:
    """A JSON response carrying the request id."""
    data = json.dumps(body, default=_json_default, separators=(",", ":")).encode()
    return Response(
        status, [("content-type", "application/json"), ("x-request-id", rid), *headers], data
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _valid_id(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


class AdminApi:
    """Dispatches admin requests; ``reload`` is awaited after each write so that this process
    serves the change at once (the others see it at their next sync)."""

    def __init__(
        self,
        db: Database,
        *,
        max_body: int,
        reload: Callable[[], Awaitable[None]],
    ) -> None:
        self._db = db
        self._max_body = max_body
        self._reload = reload
        self._table: list[tuple[str, re.Pattern[str], Callable[..., Awaitable[Response]]]] = [
            ("POST", re.compile(r"/keys"), self._create_key),
            ("GET", re.compile(r"/keys"), self._list_keys),
            ("GET", re.compile(rf"/keys/{_ID}"), self._get_key),
            ("PATCH", re.compile(rf"/keys/{_ID}"), self._update_key),
            ("DELETE", re.compile(rf"/keys/{_ID}"), self._revoke_key),
            ("GET", re.compile(rf"/keys/{_ID}/usage"), self._key_usage),
            ("POST", re.compile(r"/routes"), self._create_route),
            ("GET", re.compile(r"/routes"), self._list_routes),
            ("GET", re.compile(rf"/routes/{_ID}"), self._get_route),
            ("PATCH", re.compile(rf"/routes/{_ID}"), self._update_route),
            ("DELETE", re.compile(rf"/routes/{_ID}"), self._delete_route),
        ]

    async def handle(self, req: Request, subpath: str, rid: str) -> Response:
        """Serve ``subpath`` (the part after ``/_gateway/admin``)."""
        allowed = []
        for method, pattern, handler in self._table:
            match = pattern.fullmatch(subpath)
            if match is None:
                continue
            if method != req.method:
                allowed.append(method)
                continue
            args = match.groupdict()
            if "id" in args:
                ident = _valid_id(args["id"])
                if ident is None:
                    return _not_found(rid)
                return await handler(req, rid, ident)
            return await handler(req, rid)
        if allowed:
            return problem(
                405,
                "method-not-allowed",
                f"{req.method} is not allowed here",
                request_id=rid,
                headers=[("allow", ", ".join(allowed))],
            )
        return problem(404, "not-found", "no such admin resource", request_id=rid)

    # --- input -----------------------------------------------------------------------------

    async def _body(self, req: Request, model: type[M]) -> M:
        raw = await req.body_reader.read(self._max_body)
        try:
            data = json.loads(raw or b"null")
        except ValueError:
            raise InvalidInput([FieldError(field="body", message="is not valid JSON")]) from None
        return parse(model, data)

    def _page_args(self, req: Request) -> tuple[int, str | None]:
        query = parse_qs(req.query, keep_blank_values=True)
        errors = []
        limit = 50
        raw_limit = query.get("limit", [None])[-1]
        if raw_limit is not None:
            if raw_limit.isdigit() and 1 <= int(raw_limit) <= 200:
                limit = int(raw_limit)
            else:
                errors.append(FieldError(field="limit", message="must be an integer from 1 to 200"))
        cursor = query.get("cursor", [None])[-1] or None
        if cursor is not None:
            try:
                store.Cursor.decode(cursor)
            except (ValueError, UnicodeDecodeError):
                errors.append(FieldError(field="cursor", message="is not a cursor of this list"))
        if errors:
            raise InvalidInput(errors)
        return limit, cursor

    # --- keys ------------------------------------------------------------------------------

    async def _create_key(self, req: Request, rid: str) -> Response:
        body = await self._body(req, KeyCreate)
        plaintext = "tk_" + secrets.token_urlsafe(32)
        row = await store.create_key(
            self._db,
            name=body.name,
            key_hash=hash_key(plaintext),
            prefix=plaintext[:10],
            rate_limit=body.rate_limit,
            rate_window_s=body.rate_window_s,
            routes=body.routes,
            expires_at=body.expires_at,
        )
        await self._reload()
        location = [("location", f"/_gateway/admin/keys/{row['id']}")]
        return json_response(201, {**row, "key": plaintext}, rid, headers=location)

    async def _list_keys(self, req: Request, rid: str) -> Response:
        limit, cursor = self._page_args(req)
        items, next_cursor = await store.list_keys(self._db, limit=limit, cursor=cursor)
        return json_response(200, {"items": items, "next_cursor": next_cursor}, rid)

    async def _get_key(self, req: Request, rid: str, key_id: str) -> Response:
        row = await store.get_key(self._db, key_id=key_id)
        return _not_found(rid) if row is None else json_response(200, row, rid)

    async def _update_key(self, req: Request, rid: str, key_id: str) -> Response:
        body = await self._body(req, KeyUpdate)
        changes = _changes(body)
        row = await store.update_key(self._db, key_id=key_id, changes=changes)
        if row is None:
            return _not_found(rid)
        await self._reload()
        return json_response(200, row, rid)

    async def _revoke_key(self, req: Request, rid: str, key_id: str) -> Response:
        if not await store.revoke_key(self._db, key_id=key_id):
            return _not_found(rid)
        await self._reload()
        return Response(204, [("x-request-id", rid)])

    async def _key_usage(self, req: Request, rid: str, key_id: str) -> Response:
        if await store.get_key(self._db, key_id=key_id) is None:
            return _not_found(rid)
        usage = await store.key_usage(self._db, key_id=key_id)
        total = sum(n for classes in usage.values() for n in classes.values())
        return json_response(200, {"key_id": key_id, "total": total, "by_route": usage}, rid)

    # --- routes ----------------------------------------------------------------------------

    async def _create_route(self, req: Request, rid: str) -> Response:
        body = await self._body(req, RouteCreate)
        try:
            row = await store.create_route(self._db, fields=body.model_dump(mode="json"))
        except UniqueViolation as exc:
            return _conflict(exc, rid)
        await self._reload()
        location = [("location", f"/_gateway/admin/routes/{row['id']}")]
        return json_response(201, row, rid, headers=location)

    async def _list_routes(self, req: Request, rid: str) -> Response:
        limit, cursor = self._page_args(req)
        items, next_cursor = await store.list_routes(self._db, limit=limit, cursor=cursor)
        return json_response(200, {"items": items, "next_cursor": next_cursor}, rid)

    async def _get_route(self, req: Request, rid: str, route_id: str) -> Response:
        row = await store.get_route(self._db, route_id=route_id)
        return _not_found(rid) if row is None else json_response(200, row, rid)

    async def _update_route(self, req: Request, rid: str, route_id: str) -> Response:
        body = await self._body(req, RouteUpdate)
        changes = _changes(body)
        current = await store.get_route(self._db, route_id=route_id)
        if current is None:
            return _not_found(rid)
        # Validate the route as it will be, so that the shape rules hold after any patch.
        editable = set(RouteCreate.model_fields)
        if changes.get("kind") == "aggregate" and "upstream_url" not in changes:
            changes["upstream_url"] = None
        if changes.get("kind") == "proxy" and "parts" not in changes:
            changes["parts"] = None
        merged = {k: v for k, v in current.items() if k in editable} | changes
        route = parse(RouteCreate, merged).model_dump(mode="json")
        try:
            row = await store.update_route(self._db, route_id=route_id, changes=route)
        except UniqueViolation as exc:
            return _conflict(exc, rid)
        if row is None:
            return _not_found(rid)
        await self._reload()
        return json_response(200, row, rid)

    async def _delete_route(self, req: Request, rid: str, route_id: str) -> Response:
        if not await store.delete_route(self._db, route_id=route_id):
            return _not_found(rid)
        await self._reload()
        return Response(204, [("x-request-id", rid)])


def _changes(body: BaseModel) -> dict[str, Any]:
    changes = body.model_dump(mode="json", exclude_unset=True)
    if not changes:
        raise InvalidInput([FieldError(field="body", message="names no field to change")])
    nulls = [k for k, v in changes.items() if v is None and k not in _NULLABLE]
    if nulls:
        raise InvalidInput([FieldError(field=k, message="may not be null") for k in nulls])
    # model_dump(mode="json") turned datetimes into strings; the driver wants datetimes back.
    if isinstance(body, KeyUpdate) and "expires_at" in changes:
        changes["expires_at"] = body.expires_at
    return changes


def _not_found(rid: str) -> Response:
    return problem(404, "not-found", "no such resource", request_id=rid)


def _conflict(exc: UniqueViolation, rid: str) -> Response:
    field = "path_prefix" if "path_prefix" in exc.constraint else "name"
    return problem(
        409,
        "conflict",
        f"a route with this {field} exists already",
        request_id=rid,
        errors=[{"field": field, "message": "is already taken"}],
    )
