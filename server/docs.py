"""The README's environment and tools tables, generated from the code so that they cannot drift.

``python -m server.docs`` rewrites the tables in README.md; a test fails when they are out of date.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

# (name, default, what it does). A test checks that every variable the code reads is listed here.
ENVIRONMENT: tuple[tuple[str, str, str], ...] = (
    ("MEMBRANE_TOKEN", "", "Membrane token; selects the `membrane` backend under `auto`."),
    ("MEMBRANE_API_URL", "`https://api.getmembrane.com`", "Membrane API base URL."),
    ("MEMBRANE_WORKSPACE_KEY", "", "With the two below: mint tenant tokens locally (HS256) instead of MEMBRANE_TOKEN."),
    ("MEMBRANE_WORKSPACE_SECRET", "", "Workspace secret used to sign minted tenant tokens."),
    ("MEMBRANE_TENANT_KEY", "", "Tenant (customer) key of minted tokens."),
    ("MEMBRANE_CONNECTION_ID", "", "Use this Membrane connection instead of ensuring one for clevertap.com."),
    ("CLEVERTAP_ACCOUNT_ID", "", "CleverTap account (project) id for the direct `clevertap` backend."),
    ("CLEVERTAP_PASSCODE", "", "CleverTap passcode for the direct backend. Never echoed."),
    ("CLEVERTAP_REGION", "`eu1`", "eu1, in1, sg1, us1, aps3 or mec1: must match the account's region."),
    ("CLEVERTAP_API_BASE_URL", "", "Overrides the regional URL (e.g. `http://127.0.0.1:8765` for `sandbox serve`)."),
    ("CLEVERTAP_MCP_BACKEND", "`auto`", "auto, membrane, clevertap or sandbox (flag `--backend`)."),
    ("CLEVERTAP_MCP_READ_ONLY", "`0`", "`1`: list and allow only what cannot change the account (flag `--read-only`)."),
    (
        "CLEVERTAP_MCP_CONFIRM",
        "`always`",
        "`never` turns the preview-and-confirm step off for unattended harnesses (dangerous: see below).",
    ),
    ("CLEVERTAP_MCP_TOOLS", "", "Comma-separated tools to list (flag `--tools`)."),
    ("CLEVERTAP_MCP_EXCLUDE_TOOLS", "", "Comma-separated tools to hide; beats the above (flag `--exclude-tools`)."),
    (
        "CLEVERTAP_MCP_REDACT_PII",
        "`0`",
        "`1`: mask personal data in every result (flag `--redact-pii`; scope under Safety).",
    ),
    (
        "CLEVERTAP_MCP_REDACT_KEYS",
        "",
        "Comma-separated extra keys whose values `--redact-pii` masks (flag `--redact-keys`).",
    ),
    ("CLEVERTAP_MCP_AUDIT_LOG", "", "Append one JSON line per write attempt to this file (flag `--audit-log`)."),
    ("CLEVERTAP_MCP_CALL_BUDGET", "`120`", "Seconds a tool call may take before it stops and says how to continue."),
    ("CLEVERTAP_MCP_TIMEOUT", "`60`", "Seconds to wait for one HTTP answer from CleverTap."),
    ("CLEVERTAP_MCP_CONNECT_TIMEOUT", "`10`", "Seconds to wait for a connection to CleverTap."),
    ("CLEVERTAP_MCP_RETRY_BACKOFF", "`0.5`", "First retry delay of reads (doubles, with jitter; Retry-After wins)."),
    (
        "CLEVERTAP_MCP_MAX_FRAME_BYTES",
        "`67108864`",
        "Largest stdio message or HTTP body (64 MiB); longer ones are refused while they stream.",
    ),
    (
        "CLEVERTAP_MCP_MAX_UPSTREAM_BYTES",
        "`67108864`",
        "Largest CleverTap answer read (64 MiB); a longer one is refused while it streams.",
    ),
    ("CLEVERTAP_MCP_SECRET", "random per process", "HMAC key of confirm tokens; share it between HTTP replicas."),
    ("CLEVERTAP_MCP_HTTP_TOKEN", "", "Bearer token required by `--transport http` (mandatory off loopback)."),
    ("CLEVERTAP_MCP_ALLOWED_HOSTS", "loopback names", "Extra Host names accepted by the HTTP transport."),
    ("CLEVERTAP_MCP_REDIS_URL", "", "Keep cursor handles in Redis so any HTTP replica can continue an export."),
    ("CLEVERTAP_MCP_HTTP_IDLE_TIMEOUT", "`15`", "Seconds an idle keep-alive HTTP connection stays open."),
    (
        "CLEVERTAP_MCP_HTTP_HEADER_TIMEOUT",
        "`10`",
        "Seconds a connection may take to send a request's headers before it is closed.",
    ),
    ("CLEVERTAP_MCP_HTTP_BODY_TIMEOUT", "`30`", "Seconds without body data before a request gets 408."),
    (
        "CLEVERTAP_MCP_MAX_USER_RUNTIMES",
        "`64`",
        "Per-user runtimes (`X-Membrane-Token`) kept; the least recently used is closed.",
    ),
    (
        "CLEVERTAP_MCP_USER_RUNTIMES_MEMORY_MB",
        "`1024`",
        "Above this process RSS, idle per-user runtimes are dropped before a new one is made.",
    ),
    ("CLEVERTAP_MCP_STATE_DIR", "`~/.config/clevertap-mcp`", "Where the Membrane connection id is remembered."),
    ("CLEVERTAP_MCP_LOG_LEVEL", "`WARNING`", "Log level of the stderr log (secrets are always masked)."),
    ("CLEVERTAP_MCP_PYTHON", "", "Bundle launcher: the Python 3.10+ interpreter to use."),
    ("CLEVERTAP_MCP_VENV", "", "Bundle launcher: where to create its virtual environment."),
)


def tools_table() -> str:
    from tools.catalog import CATALOG

    rows = ["| tool | Membrane action | read-only | destructive | what it does |", "|---|---|---|---|---|"]
    for spec in CATALOG:
        first = spec.description.split(". ")[0].rstrip(".") + "."
        rows.append(
            f"| `{spec.name}` | {spec.action_key or '—'} | {'yes' if spec.read_only else 'no'} | "
            f"{'yes' if spec.destructive else 'no'} | {first.replace('|', '/')} |"
        )
    return "\n".join(rows)


def env_table() -> str:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    rows += [f"| `{name}` | {default or '—'} | {meaning} |" for name, default, meaning in ENVIRONMENT]
    return "\n".join(rows)


def render(readme: str) -> str:
    for marker, table in (("env", env_table()), ("tools", tools_table())):
        pattern = re.compile(rf"(<!-- {marker}:start -->\n).*?(<!-- {marker}:end -->)", re.S)
        readme = pattern.sub(lambda m, t=table: m.group(1) + t + "\n" + m.group(2), readme)  # type: ignore[misc]
    return readme


def main() -> int:
    path = Path(__file__).resolve().parent.parent / "README.md"
    text = path.read_text()
    new = render(text)
    if new != text:
        path.write_text(new)
        print(f"updated {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
