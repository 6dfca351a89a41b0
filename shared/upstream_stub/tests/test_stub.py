"""The stub's data-plane controls and /_stub/* endpoints, against a real subprocess."""

from __future__ import annotations

import gzip
import json
import socket
import time
import uuid
from collections.abc import Iterator

import h11
import httpx
import pytest

from upstream_stub.process import StubProcess

MIB = 1024 * 1024


# -- raw-socket helpers (for what httpx hides: resets, FIN vs RST, pipelining) -----------------


def _connect(stub: StubProcess, timeout: float = 10.0) -> socket.socket:
    sock = socket.create_connection((stub.host, stub.port), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def _read_response(sock: socket.socket, conn: h11.Connection) -> tuple[h11.Response, bytes]:
    """Read one whole response with an h11 client connection."""
    response: h11.Response | None = None
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(sock.recv(65536))
        elif isinstance(event, h11.Response):
            response = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            assert response is not None
            return response, bytes(body)
        elif isinstance(event, h11.ConnectionClosed):
            raise ConnectionError("closed before a full response")


def _expect_reset(sock: socket.socket) -> None:
    """The peer must abort the connection with an RST, not close it with a FIN."""
    with pytest.raises(ConnectionResetError):
        _read_until_closed(sock)  # a FIN would end it normally and fail the pytest.raises


def _read_until_closed(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def _delayed_get(path: str, request_id: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: s\r\nX-Request-ID: {request_id}\r\n\r\n".encode()


def _unique_id() -> str:
    return f"t-{uuid.uuid4().hex}"


def _wait_for(predicate: object, timeout: float = 5.0) -> None:
    """Poll `predicate()` every 20 ms until it is true; fail after `timeout` seconds."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(0.02)


@pytest.fixture
def clean(client: httpx.Client) -> None:
    """Start with an empty request log and cancelled list."""
    assert client.delete("/_stub/requests").status_code == 204


# -- echo --------------------------------------------------------------------------------------


def test_echo_fields(client: httpx.Client) -> None:
    body = "héllo wörld".encode()
    response = client.post(
        "/some/path/7?b=2&a=1",
        content=body,
        headers={"X-First": "one", "X-Request-ID": "abc-1", "X-Last": "last"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    echo = response.json()
    assert echo["method"] == "POST"
    assert echo["path"] == "/some/path/7"
    assert echo["query"] == "b=2&a=1"
    assert echo["body"] == "héllo wörld"
    assert echo["body_bytes"] == len(body) == 13
    names = [name for name, _value in echo["headers"]]
    assert names == [name.lower() for name in names]
    assert ["x-first", "one"] in echo["headers"]
    assert ["x-request-id", "abc-1"] in echo["headers"]
    assert names.index("x-first") < names.index("x-request-id") < names.index("x-last")
    assert ["content-length", "13"] in echo["headers"]
    assert set(echo) == {"method", "path", "query", "headers", "body", "body_bytes"}


def test_echo_without_query_and_body(client: httpx.Client) -> None:
    echo = client.get("/plain").json()
    assert echo["query"] == ""
    assert echo["body"] == ""
    assert echo["body_bytes"] == 0
    assert echo["method"] == "GET"


def test_echo_body_with_invalid_utf8_is_replaced(client: httpx.Client) -> None:
    echo = client.put("/bin", content=b"ok\xff\xfe").json()
    assert echo["body"] == "ok\ufffd\ufffd"
    assert echo["body_bytes"] == 4


def test_controls_are_echoed(client: httpx.Client) -> None:
    echo = client.get("/c?_status=201&x=1").json()
    assert echo["query"] == "_status=201&x=1"


def test_head_gets_headers_without_body(stub: StubProcess) -> None:
    with _connect(stub) as sock:
        conn = h11.Connection(h11.CLIENT)
        sock.sendall(conn.send(h11.Request(method="HEAD", target="/h", headers=[("Host", "s")])))
        response, body = _read_response(sock, conn)
    assert response.status_code == 200
    assert body == b""
    assert int(dict(response.headers)[b"content-length"]) > 0


# -- _status -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [201, 404, 418, 500, 503])
def test_status(client: httpx.Client, status: int) -> None:
    response = client.get(f"/s?_status={status}")
    assert response.status_code == status
    assert response.json()["path"] == "/s"


@pytest.mark.parametrize("status", [204, 304])
def test_status_without_body(client: httpx.Client, status: int) -> None:
    response = client.get(f"/s?_status={status}")
    assert response.status_code == status
    assert response.content == b""
    assert "content-length" not in response.headers


@pytest.mark.parametrize(
    "query", ["_status=abc", "_status=99", "_size=-1", "_reset=sideways", "_body=html", "_header=x"]
)
def test_bad_control_is_400(client: httpx.Client, query: str) -> None:
    response = client.get(f"/bad?{query}")
    assert response.status_code == 400
    assert query.split("=")[0] in response.json()["error"]


# -- _delay_ms and cancellation ------------------------------------------------------------------


def test_delay(client: httpx.Client) -> None:
    started = time.monotonic()
    response = client.get("/d?_delay_ms=300")
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert elapsed >= 0.3


def test_delay_does_not_block_other_connections(client: httpx.Client, stub: StubProcess) -> None:
    with _connect(stub) as slow:
        slow.sendall(b"GET /slow?_delay_ms=3000 HTTP/1.1\r\nHost: s\r\n\r\n")
        started = time.monotonic()
        assert client.get("/fast").status_code == 200
        assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("how", ["fin", "rst"])
def test_client_gone_during_delay_is_recorded_as_cancelled(
    client: httpx.Client, stub: StubProcess, how: str
) -> None:
    request_id = _unique_id()
    sock = _connect(stub)
    sock.sendall(_delayed_get("/slow?_delay_ms=2000", request_id))
    time.sleep(0.1)
    if how == "rst":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()
    # Well before the 2 s delay ends: the stub noticed the close, it did not just time out.
    _wait_for(lambda: request_id in client.get("/_stub/cancelled").json()["items"], timeout=1.5)
    [record] = [
        item
        for item in client.get("/_stub/requests").json()["items"]
        if item["request_id"] == request_id
    ]
    assert record["cancelled"] is True


def test_answered_delayed_request_is_not_cancelled(client: httpx.Client) -> None:
    request_id = _unique_id()
    assert client.get("/d?_delay_ms=50", headers={"X-Request-ID": request_id}).status_code == 200
    assert request_id not in client.get("/_stub/cancelled").json()["items"]
    [record] = [
        item
        for item in client.get("/_stub/requests").json()["items"]
        if item["request_id"] == request_id
    ]
    assert record["cancelled"] is False


def test_keep_alive_continues_after_delayed_answer(stub: StubProcess) -> None:
    with _connect(stub) as sock:
        conn = h11.Connection(h11.CLIENT)
        for target in ("/one?_delay_ms=100", "/two"):
            sock.sendall(
                conn.send(h11.Request(method="GET", target=target, headers=[("Host", "s")]))
            )
            sock.sendall(conn.send(h11.EndOfMessage()))
            if target == "/one?_delay_ms=100":
                _response, body = _read_response(sock, conn)
                assert json.loads(body)["path"] == "/one"
                conn.start_next_cycle()
        _response, body = _read_response(sock, conn)
        assert json.loads(body)["path"] == "/two"


def test_pipelined_requests_are_answered_in_order(stub: StubProcess) -> None:
    with _connect(stub) as sock:
        sock.sendall(
            b"GET /p1?_delay_ms=100 HTTP/1.1\r\nHost: s\r\n\r\nGET /p2 HTTP/1.1\r\nHost: s\r\n\r\n"
        )
        conn = h11.Connection(h11.CLIENT)
        conn.send(h11.Request(method="GET", target="/p1", headers=[("Host", "s")]))
        conn.send(h11.EndOfMessage())
        _response, first = _read_response(sock, conn)
        conn.start_next_cycle()
        conn.send(h11.Request(method="GET", target="/p2", headers=[("Host", "s")]))
        conn.send(h11.EndOfMessage())
        _response, second = _read_response(sock, conn)
    assert json.loads(first)["path"] == "/p1"
    assert json.loads(second)["path"] == "/p2"


# -- _size ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [100, 10 * MIB])
def test_size_is_exact(client: httpx.Client, size: int) -> None:
    response = client.get(f"/big?_size={size}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert len(response.content) == size
    assert int(response.headers["content-length"]) == size
    assert isinstance(response.json(), dict)


@pytest.mark.parametrize("size", [1, 2, 5, 10, 11, 12])
def test_small_sizes_are_exact_and_valid_json(client: httpx.Client, size: int) -> None:
    response = client.get(f"/small?_size={size}")
    assert len(response.content) == size
    json.loads(response.content)


def test_size_zero_is_empty(client: httpx.Client) -> None:
    response = client.get("/small?_size=0")
    assert response.status_code == 200
    assert response.content == b""


def test_size_with_status(client: httpx.Client) -> None:
    response = client.get("/x?_size=50&_status=502")
    assert response.status_code == 502
    assert len(response.content) == 50


# -- _body, _gzip --------------------------------------------------------------------------------


def test_body_text_is_not_json(client: httpx.Client) -> None:
    response = client.get("/x?_body=text")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.content == b"not json"
    with pytest.raises(json.JSONDecodeError):
        response.json()


def _raw_body(client: httpx.Client, url: str) -> tuple[httpx.Headers, bytes]:
    with client.stream("GET", url, headers={"Accept-Encoding": "identity"}) as response:
        return response.headers, b"".join(response.iter_raw())


def test_gzip_echo(client: httpx.Client) -> None:
    headers, raw = _raw_body(client, "/z?_gzip=1")
    assert headers["content-encoding"] == "gzip"
    assert int(headers["content-length"]) == len(raw)
    echo = json.loads(gzip.decompress(raw))
    assert echo["path"] == "/z"
    assert echo["query"] == "_gzip=1"


def test_gzip_size(client: httpx.Client) -> None:
    headers, raw = _raw_body(client, "/z?_gzip=1&_size=100000")
    assert headers["content-encoding"] == "gzip"
    plain = client.get("/z?_size=100000").content
    assert len(raw) < len(plain)
    assert gzip.decompress(raw) == plain
    assert len(plain) == 100000


def test_gzip_body_text(client: httpx.Client) -> None:
    headers, raw = _raw_body(client, "/z?_gzip=1&_body=text")
    assert headers["content-encoding"] == "gzip"
    assert gzip.decompress(raw) == b"not json"


def test_no_gzip_without_control(client: httpx.Client) -> None:
    headers, raw = _raw_body(client, "/z?_size=100")
    assert "content-encoding" not in headers
    assert len(raw) == 100


# -- _reset --------------------------------------------------------------------------------------


def test_reset_before_skips_the_body(client: httpx.Client, stub: StubProcess) -> None:
    request_id = _unique_id()
    with _connect(stub) as sock:
        # The announced body is never sent: the stub must not wait for it.
        sock.sendall(
            b"POST /r?_reset=before HTTP/1.1\r\nHost: s\r\nContent-Length: 100\r\n"
            + f"X-Request-ID: {request_id}\r\n\r\n".encode()
        )
        _expect_reset(sock)
    [record] = [
        item
        for item in client.get("/_stub/requests").json()["items"]
        if item["request_id"] == request_id
    ]
    assert record["body_bytes"] == 0


def test_reset_after_reads_the_whole_request_first(stub: StubProcess) -> None:
    with _connect(stub) as sock:
        sock.sendall(b"POST /r?_reset=after HTTP/1.1\r\nHost: s\r\nContent-Length: 5\r\n\r\nab")
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):  # still open, waiting for the rest of the body
            sock.recv(1)
        sock.settimeout(10.0)
        sock.sendall(b"cde")
        _expect_reset(sock)


def test_reset_is_a_connection_error_for_httpx(client: httpx.Client) -> None:
    for url in ("/r?_reset=before", "/r?_reset=after"):
        with pytest.raises(httpx.TransportError):
            client.post(url, content=b"payload")


# -- _close, keep-alive, _header ------------------------------------------------------------------


def test_keep_alive_by_default(stub: StubProcess) -> None:
    with _connect(stub) as sock:
        conn = h11.Connection(h11.CLIENT)
        for index in range(3):
            sock.sendall(
                conn.send(h11.Request(method="GET", target=f"/k{index}", headers=[("Host", "s")]))
            )
            sock.sendall(conn.send(h11.EndOfMessage()))
            response, body = _read_response(sock, conn)
            assert json.loads(body)["path"] == f"/k{index}"
            assert b"connection" not in dict(response.headers)
            conn.start_next_cycle()


def test_close_answers_then_closes(stub: StubProcess) -> None:
    with _connect(stub) as sock:
        conn = h11.Connection(h11.CLIENT)
        sock.sendall(
            conn.send(h11.Request(method="GET", target="/c?_close=1", headers=[("Host", "s")]))
        )
        sock.sendall(conn.send(h11.EndOfMessage()))
        response, body = _read_response(sock, conn)
        assert response.status_code == 200
        assert dict(response.headers)[b"connection"] == b"close"
        assert json.loads(body)["path"] == "/c"
        assert sock.recv(1) == b""  # FIN: the stub closed its side


def test_extra_headers(client: httpx.Client) -> None:
    response = client.get(
        "/h?_header=Connection:X-Up&_header=X-Up:1&_header=Keep-Alive:timeout=5"
        "&_header=X-Multi:a&_header=X-Multi:b"
    )
    assert response.status_code == 200
    assert response.headers["connection"] == "X-Up"
    assert response.headers["x-up"] == "1"
    assert response.headers["keep-alive"] == "timeout=5"
    assert response.headers.get_list("x-multi") == ["a", "b"]
    assert response.json()["path"] == "/h"


def test_invalid_extra_header_is_400(client: httpx.Client) -> None:
    response = client.get("/h?_header=Bad Name:1")
    assert response.status_code == 400
    assert "header" in response.json()["error"]


# -- request bodies ------------------------------------------------------------------------------


def test_chunked_upload(client: httpx.Client) -> None:
    parts = [b"first,", b"second,", b"x" * 100_000]

    def chunks() -> Iterator[bytes]:
        yield from parts

    response = client.post("/upload", content=chunks())
    echo = response.json()
    assert ["transfer-encoding", "chunked"] in echo["headers"]
    assert echo["body_bytes"] == sum(map(len, parts))
    assert echo["body"] == b"".join(parts).decode()


def test_expect_100_continue(stub: StubProcess) -> None:
    with _connect(stub) as sock:
        sock.sendall(
            b"POST /e HTTP/1.1\r\nHost: s\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
        )
        assert sock.recv(1024).startswith(b"HTTP/1.1 100 ")
        sock.sendall(b"hi")
        conn = h11.Connection(h11.CLIENT)
        conn.send(
            h11.Request(
                method="POST", target="/e", headers=[("Host", "s"), ("Content-Length", "2")]
            )
        )
        conn.send(h11.Data(data=b"hi"))
        conn.send(h11.EndOfMessage())
        _response, body = _read_response(sock, conn)
        assert json.loads(body)["body"] == "hi"


def test_malformed_request_gets_400(stub: StubProcess) -> None:
    with _connect(stub) as sock:
        sock.sendall(b"THIS IS NOT HTTP\r\n\r\n")
        data = _read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 400 ")


# -- /_stub/* ------------------------------------------------------------------------------------


def test_health(client: httpx.Client) -> None:
    response = client.get("/_stub/health")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"status": "ok"}


def test_unknown_stub_endpoint_and_wrong_method(client: httpx.Client) -> None:
    assert client.get("/_stub/nope").status_code == 404
    assert client.post("/_stub/health").status_code == 405
    assert client.put("/_stub/requests").status_code == 405


@pytest.mark.usefixtures("clean")
def test_requests_log(client: httpx.Client) -> None:
    client.get("/one?a=1", headers={"X-Request-ID": "rid-1"})
    client.post("/two", content=b"12345")
    client.get("/_stub/health")  # control requests are not logged
    items = client.get("/_stub/requests").json()["items"]
    assert [item["path"] for item in items] == ["/one", "/two"]
    first, second = items
    assert set(first) == {
        "method",
        "path",
        "query",
        "headers",
        "body_bytes",
        "request_id",
        "cancelled",
    }
    assert first["method"] == "GET"
    assert first["query"] == "a=1"
    assert first["request_id"] == "rid-1"
    assert ["x-request-id", "rid-1"] in first["headers"]
    assert first["cancelled"] is False
    assert second["request_id"] is None
    assert second["body_bytes"] == 5


@pytest.mark.usefixtures("clean")
def test_delete_clears_log_and_cancelled(client: httpx.Client, stub: StubProcess) -> None:
    request_id = _unique_id()
    with _connect(stub) as sock:
        sock.sendall(_delayed_get("/x?_delay_ms=5000", request_id))
        _wait_for(lambda: client.get("/_stub/stats").json()["open_connections"] >= 2)
        _wait_for(lambda: len(client.get("/_stub/requests").json()["items"]) == 1)
    _wait_for(lambda: client.get("/_stub/cancelled").json()["items"] == [request_id])
    assert client.delete("/_stub/requests").status_code == 204
    assert client.get("/_stub/requests").json() == {"items": []}
    assert client.get("/_stub/cancelled").json() == {"items": []}


@pytest.mark.usefixtures("clean")
def test_requests_log_keeps_the_last_1000(client: httpx.Client) -> None:
    for index in range(1005):
        client.get(f"/n{index}")
    items = client.get("/_stub/requests").json()["items"]
    assert len(items) == 1000
    assert items[0]["path"] == "/n5"
    assert items[-1]["path"] == "/n1004"


def test_stats(client: httpx.Client, stub: StubProcess) -> None:
    before = client.get("/_stub/stats").json()
    for _ in range(3):
        client.get("/counted")
    client.get("/_stub/health")
    sockets = [_connect(stub) for _ in range(4)]
    try:
        # The client's own connection plus the four idle ones.
        _wait_for(lambda: client.get("/_stub/stats").json()["open_connections"] == 5)
        after = client.get("/_stub/stats").json()
        assert after["requests"] == before["requests"] + 3
    finally:
        for sock in sockets:
            sock.close()
    _wait_for(lambda: client.get("/_stub/stats").json()["open_connections"] == 1)
