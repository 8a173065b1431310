"""The floor for bulk upload: a plain httpx script posting 1000-record batches, 15 at a time, to ``POST /1/upload``.

It does what any hand-written CleverTap uploader does and nothing more (no validation, no retries), so the ratio to
``clevertap_upload_events`` is the cost of the MCP layer, our validation and our client. ``make_events`` is shared
with ``bench/run.py`` so both sides send exactly the same records.

Usage: python bench/floors/httpx_upload.py --base-url http://127.0.0.1:N --n 100000 --start-ts EPOCH
Prints one JSON line: {"seconds", "sent", "processed", "failed_batches", "events_per_s"}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

import httpx

BATCH = 1000
CONCURRENCY = 15
EVENT_NAME = "Bench Upload"


def make_events(n: int, start_ts: int, offset: int = 0, name: str = EVENT_NAME) -> list[dict[str, Any]]:
    """``n`` deterministic event records, all inside the UTC day that starts at ``start_ts``."""
    return [
        {
            "identity": f"bench-{(i * 7919) % 5000}",
            "evtName": name,
            "evtData": {"Amount": i % 500, "Sku": f"SKU-{i % 97}", "Channel": "web" if i % 3 else "app"},
            "ts": start_ts + (i * 13) % 86_000,
        }
        for i in range(offset, offset + n)
    ]


async def upload(
    base_url: str, account_id: str, passcode: str, events: list[dict[str, Any]], timeout_s: float = 120.0
) -> dict[str, Any]:
    batches = [[{"type": "event", **e} for e in events[i : i + BATCH]] for i in range(0, len(events), BATCH)]
    headers = {
        "X-CleverTap-Account-Id": account_id,
        "X-CleverTap-Passcode": passcode,
        "Content-Type": "application/json; charset=utf-8",
    }
    processed = 0
    failed = 0
    sem = asyncio.Semaphore(CONCURRENCY)
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=timeout_s, limits=limits) as client:

        async def post(batch: list[dict[str, Any]]) -> None:
            nonlocal processed, failed
            async with sem:
                resp = await client.post("/1/upload", json={"d": batch})
            if resp.status_code != 200:
                failed += 1
                return
            processed += int(resp.json().get("processed", 0))

        started = time.perf_counter()
        await asyncio.gather(*(post(b) for b in batches))
        seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "sent": len(events),
        "processed": processed,
        "failed_batches": failed,
        "events_per_s": len(events) / seconds if seconds > 0 else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--start-ts", type=int, required=True)
    parser.add_argument("--offset", type=int, default=0, help="index of the first record (to top up a range)")
    parser.add_argument("--account-id", default="DEMO-SANDBOX")
    parser.add_argument("--passcode", default="sandbox")
    ns = parser.parse_args(argv)
    events = make_events(ns.n, ns.start_ts, ns.offset)
    result = asyncio.run(upload(ns.base_url, ns.account_id, ns.passcode, events))
    print(json.dumps(result))
    return 0 if result["failed_batches"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
