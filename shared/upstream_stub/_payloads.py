"""Response bodies that are expensive to build, cached so that large ones cost nothing twice."""

from __future__ import annotations

import gzip
from functools import lru_cache

# Largest `_size` the stub accepts: big enough for every body-limit test, small enough that a
# typo cannot make the stub allocate gigabytes.
MAX_SIZE = 256 * 1024 * 1024

_PREFIX = b'{"data":"'
_SUFFIX = b'"}'
_FRAME = len(_PREFIX) + len(_SUFFIX)  # 11: the size of {"data":""}


@lru_cache(maxsize=32)
def sized_json(size: int) -> bytes:
    """Return a valid JSON document of exactly `size` bytes.

    From 11 bytes on it is `{"data":"xxx…"}`. Below that: `{}` padded with trailing spaces
    (2-10 bytes), `0` (1 byte) and, for 0, an empty body, which is the one size that cannot be
    valid JSON.
    """
    if size >= _FRAME:
        return _PREFIX + b"x" * (size - _FRAME) + _SUFFIX
    if size >= 2:
        return b"{}" + b" " * (size - 2)
    return b"0" if size == 1 else b""


@lru_cache(maxsize=32)
def gzipped_sized_json(size: int) -> bytes:
    """Gzip of `sized_json(size)`; cached because compressing 10 MiB takes tens of ms."""
    return gzip_bytes(sized_json(size))


def gzip_bytes(data: bytes) -> bytes:
    """Gzip `data` deterministically (mtime 0) and quickly (level 1: the stub is not a codec)."""
    return gzip.compress(data, compresslevel=1, mtime=0)
