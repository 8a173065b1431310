"""The floor for exports: a plain httpx loop over CleverTap's cursor protocol (POST the query, GET each cursor).

    python bench/floors/httpx_export.py --base-url http://127.0.0.1:N --event NAME --day YYYYMMDD [--batch-size 5000]

Prints one JSON line: records, pages, seconds, rec/s. Cursors are sent back exactly as received.
"""

from __future__ import annotations

import argparse
import json
import time

import httpx


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--event", required=True)
    parser.add_argument("--day", type=int, required=True)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--account-id", default="DEMO-SANDBOX")
    parser.add_argument("--passcode", default="sandbox")
    ns = parser.parse_args()
    headers = {"X-CleverTap-Account-Id": ns.account_id, "X-CleverTap-Passcode": ns.passcode}
    query = {"event_name": ns.event, "from": ns.day, "to": ns.day}
    records = pages = 0
    with httpx.Client(base_url=ns.base_url, headers=headers, timeout=120, trust_env=False) as client:
        started = time.perf_counter()
        first = client.post(f"/1/events.json?batch_size={ns.batch_size}", json=query)
        first.raise_for_status()
        cursor = first.json().get("cursor")
        while cursor:
            page = client.get(f"/1/events.json?cursor={cursor}")
            page.raise_for_status()
            body = page.json()
            records += len(body.get("records") or [])
            pages += 1
            nxt = body.get("next_cursor")
            cursor = nxt if nxt and nxt != cursor else None
        seconds = time.perf_counter() - started
    print(json.dumps({"records": records, "pages": pages, "seconds": seconds, "rec_per_s": records / seconds}))


if __name__ == "__main__":
    main()
