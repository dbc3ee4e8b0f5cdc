"""Regressions for issue 7 — what the fuzz targets (tests/fuzz/) found.

1. Each obs-fold line of an upstream's response head rebuilt the whole
   folded value at the end of the head's buffer: time and memory quadratic
   in the fold lines. 100 kB of " x" lines took the daemon from 11 to 606 MiB
   and stalled its one event loop for two seconds (fuzz_response, input in
   tests/fuzz/corpus/response/crash-fold-quadratic).

Served through the real daemon; the sanitizer build runs it too.
"""

import os

import pytest

from fakes.daemon import rss_growth_during
from fakes.hostile import HostileServer, raw_reply
from test_proxy_security import (assert_clean_head, base_rules, decode_body, exchange, get,
                                 serves)

FOLDS = 25000  # 100 kB of fold lines, well inside what libcurl accepts
SANITIZER = bool(os.environ.get("AAUTH_SANITIZER"))


@pytest.fixture
def hostile():
    made = []

    def make(handler):
        s = HostileServer(handler).start()
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


def test_fold_flood_costs_linear_memory_and_time(world, hostile):
    w = world
    raw = (b"HTTP/1.1 200 OK\r\nX-A: a\r\n" + b" x\r\n" * FOLDS +
           b"Content-Length: 2\r\n\r\nok")
    up = hostile(raw_reply(raw))
    w.start(rules=base_rules(w) + [{"host": "127.0.0.1", "port": up.port, "action": "pass"}],
            upstream={"idle_timeout_ms": 20000})
    got, grew = rss_growth_during(w.proxy.proc.pid,
                                  lambda: exchange(w.proxy.addr, get(up.url("/folds")), timeout=30))
    st, fields, rest = assert_clean_head(got)
    assert st == 200, got[:300]
    # The folds are joined with one SP each, as RFC 9112 §5.2 allows.
    assert fields.get("x-a") == ["a" + " x" * FOLDS]
    assert decode_body(fields, rest) == b"ok"
    if not SANITIZER:
        # (libcurl reallocates its own copy of the header at every fold
        # line, and ASan's quarantine keeps up to 256 MiB of what it frees.)
        assert grew < 32, f"RSS grew {grew:.0f} MiB on 100 kB of fold lines"
    serves(w)
