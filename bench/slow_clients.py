"""Benchmark: /healthz availability while slow clients hold connections open (issue 11 item 7).

A fresh instance in a temporary folder; gunicorn on a free loopback port, started three ways
in the same run: the baseline (yesterday's `-w 4` sync workers), the shipped gthread config
without its `worker_connections = threads` line, and deploy/gunicorn.conf.py as shipped. For
each, N slow connections (half trickle their headers, half the body of a form POST, one
byte per half second) stay open while /healthz is probed every 0.1 s (2 s timeout).

    .venv/bin/python bench/slow_clients.py               # 50 slow clients, 10 s of probes
    .venv/bin/python bench/slow_clients.py --slow 100

It only measures (exit 0 whatever the figures); the bound is asserted by
tests/test_production.py.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.test_production import Gunicorn, SlowClients, _env, _healthz, _init  # noqa: E402

SETUPS = [
    # --threads 1: with more threads gunicorn turns sync workers into gthread ones.
    (
        "baseline: gunicorn -w 4 (sync)",
        ["-k", "sync", "-w", "4", "--threads", "1", "--timeout", "600"],
    ),
    ("gthread 2x32, worker_connections 1000", ["--worker-connections", "1000"]),
    ("deploy/gunicorn.conf.py as shipped", []),
]


def measure(env, options: list[str], slow: int, seconds: float) -> tuple[int, int, float]:
    """(probes answered within 2 s, probes, slowest answer in s) under `slow` slow clients."""
    server = Gunicorn(env, *options)
    clients = SlowClients(server.port, slow)
    answered = probes = 0
    slowest = 0.0
    try:
        time.sleep(1)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            probes += 1
            start = time.monotonic()
            try:
                ok = _healthz(server.port, timeout=2)[0] == 200
            except OSError:
                ok = False
            took = time.monotonic() - start
            if ok and took <= 2:
                answered += 1
                slowest = max(slowest, took)
            time.sleep(0.1)
    finally:
        clients.stop()
        server.stop()
    return answered, probes, slowest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", type=int, default=50, help="slow connections (default 50)")
    parser.add_argument("--seconds", type=float, default=10, help="probing time per setup")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = _env(Path(tmp))
        _init(env)
        results = []
        for label, options in SETUPS:
            answered, probes, slowest = measure(env, options, args.slow, args.seconds)
            results.append(answered / probes)
            print(
                f"{label:<42} /healthz {answered:>3}/{probes:<3} answered within 2 s "
                f"({100 * answered / probes:5.1f} %), slowest {slowest * 1000:.0f} ms"
            )
    base = results[0]
    ratio = "n/a (baseline answered none)" if base == 0 else f"{results[-1] / base:.1f} x"
    print(f"{args.slow} slow clients: shipped config availability vs baseline: {ratio}")


if __name__ == "__main__":
    main()
