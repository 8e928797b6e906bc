"""Pricing is offline (issue 17: "no network at runtime — never call its price-update path by
default"): in a fresh process whose sockets refuse to connect, the first priced call loads the
bundled genai-prices data, starts no update thread and opens no connection."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

CODE = textwrap.dedent("""
    import json, socket, threading
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(repr(args[:2]))
        raise OSError("network disabled in this test")

    socket.socket.connect = refuse
    socket.socket.connect_ex = refuse
    socket.create_connection = refuse
    socket.getaddrinfo = refuse

    from hypertool_callbacks.context.cost import Pricer
    from hypertool_callbacks.events import Usage

    before = {t.name for t in threading.enumerate()}
    cost = Pricer().price(None, "gpt-4o", "openai", Usage(1000, 100), 0)
    from genai_prices import data_snapshot
    print(json.dumps({
        "usd": cost.total_usd if cost else None,
        "source": cost.source if cost else None,
        "attempts": attempts,
        "new_threads": sorted({t.name for t in threading.enumerate()} - before),
        "snapshot": type(data_snapshot.get_snapshot()).__name__,
    }))
""")


def test_the_first_priced_call_uses_the_bundled_data_and_no_network() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HYPERTOOL_", "OTEL_"))}
    done = subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["usd"] is not None and found["usd"] > 0
    assert found["source"] == "genai-prices"
    assert found["attempts"] == []
    assert found["new_threads"] == []  # UpdatePrices runs in a thread: none was started
