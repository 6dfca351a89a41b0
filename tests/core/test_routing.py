"""Longest segment-aligned prefix matching."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway_core.config import RouteRecord, RouteTable


def route(prefix: str) -> RouteRecord:
    return RouteRecord(prefix, prefix, prefix, "proxy", "http://u", (), False, 1000, 0)


TABLE = RouteTable([route("/orders"), route("/orders/admin"), route("/a/b")])


def test_prefix_matches_itself_and_below() -> None:
    assert TABLE.match("/orders").name == "/orders"  # type: ignore[union-attr]
    assert TABLE.match("/orders/7").name == "/orders"  # type: ignore[union-attr]


def test_longest_prefix_wins() -> None:
    assert TABLE.match("/orders/admin/x").name == "/orders/admin"  # type: ignore[union-attr]


def test_prefix_is_segment_aligned() -> None:
    assert TABLE.match("/ordersx") is None
    assert TABLE.match("/a") is None
    assert TABLE.match("/a/bc") is None


def test_root_route_catches_the_rest() -> None:
    table = RouteTable([route("/"), route("/x")])
    assert table.match("/anything").name == "/"  # type: ignore[union-attr]
    assert table.match("/x/1").name == "/x"  # type: ignore[union-attr]


segment = st.text(alphabet="abcxyz09-", min_size=1, max_size=4)


@given(st.lists(segment, min_size=1, max_size=3), st.lists(segment, max_size=3))
def test_any_path_below_a_prefix_matches_it(prefix: list[str], rest: list[str]) -> None:
    table = RouteTable([route("/" + "/".join(prefix))])
    assert table.match("/" + "/".join(prefix + rest)) is not None


@given(st.lists(segment, min_size=1, max_size=3), segment)
def test_a_longer_last_segment_does_not_match(prefix: list[str], extra: str) -> None:
    table = RouteTable([route("/" + "/".join(prefix))])
    assert table.match("/" + "/".join(prefix) + extra) is None
