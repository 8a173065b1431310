"""A closed-loop load generator for Streamable HTTP MCP servers: N clients, each sending its next ``tools/call`` as
soon as the last one was answered. Prints one JSON line: requests, seconds, req/s, errors.

    python bench/floors/http_load.py --url http://127.0.0.1:N/mcp --clients 8 --requests 2000 --tool echo --args '{}'
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import httpx

HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "MCP-Protocol-Version": "2025-11-25",
}


async def run(url: str, clients: int, requests: int, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": args}}
    data = json.dumps(body).encode()
    left = requests
    errors = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=60, trust_env=False) as client:
        # Warm-up: the first calls pay for lazy imports and connection set-up, which are not throughput.
        for _ in range(min(20, requests)):
            (await client.post(url, content=data, headers=HEADERS)).raise_for_status()

        async def worker() -> None:
            nonlocal left, errors
            while left > 0:
                left -= 1
                answer = await client.post(url, content=data, headers=HEADERS)
                if answer.status_code != 200 or b'"isError":true' in answer.content:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        seconds = time.perf_counter() - started
    return {"requests": requests, "seconds": seconds, "req_per_s": requests / seconds, "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--tool", required=True)
    parser.add_argument("--args", default="{}")
    ns = parser.parse_args()
    print(json.dumps(asyncio.run(run(ns.url, ns.clients, ns.requests, ns.tool, json.loads(ns.args)))))


if __name__ == "__main__":
    main()
