"""Benchmark: the markup scan of text evidence (filetypes.text_markup) against SHA-256.

Every .txt and .csv upload is read once more to look for web page markup. This prints
the scan's time per MiB for ordinary Japanese text, a CSV, and a hostile file made of
nothing but tag openings ("<a " repeated, the most work per byte the pattern allows),
each as a ratio to hashing the same bytes with hashlib.sha256 in the same run (every
upload is hashed anyway). The script only measures and exits 0.

    .venv/bin/python bench/text_markup.py               # 64 MiB per sample
    .venv/bin/python bench/text_markup.py --size-mib 8  # quick run
"""

from __future__ import annotations

import argparse
import hashlib
import io
import time

from auditapp.services import filetypes


def _best_of(runs: int, work) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    size = args.size_mib * 1024 * 1024
    samples = {
        "Japanese text": "監査証跡のテキストです。確認日 2026-04-01, 担当 a < b\n".encode(),
        "CSV": b"123,taro,456.7,2026-04-01,<taro@example.jp>\n",
        "hostile: '<a ' repeated": b"<a ",
    }
    print(f"{args.size_mib} MiB per sample, best of {args.runs}")
    print(f"{'sample':28} {'scan ms/MiB':>12} {'sha256 ms/MiB':>14} {'ratio':>7}")
    for label, unit in samples.items():
        data = (unit * (size // len(unit) + 1))[:size]
        found = filetypes.text_markup(io.BytesIO(data))
        scan = _best_of(args.runs, lambda d=data: filetypes.text_markup(io.BytesIO(d)))
        digest = _best_of(args.runs, lambda d=data: hashlib.sha256(d).hexdigest())
        per_mib = 1000 / args.size_mib
        print(
            f"{label:28} {scan * per_mib:12.2f} {digest * per_mib:14.2f} "
            f"{scan / digest:6.1f}x{'  (found ' + found + ')' if found else ''}"
        )


if __name__ == "__main__":
    main()
