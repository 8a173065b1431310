"""Which imports make ``python -m server`` start slower than a bare ``mcp`` server, and who pulls them in.

    python bench/importprofile.py [--runs 5] [--top 25] [-- extra server flags, default --sandbox]

Starts the server and the minimal floor server with ``-X importtime``, each through its real serve path (spawn,
``initialize``, answer, stdin closed), several times, and keeps each module's median self time. Modules that the
floor also loads cost the server nothing extra, whoever imports them first; the rest is the server's own start-up
cost. It prints that extra cost by top-level package, and for each of our modules (server.*, tools.*) the extra
time of its subtree, i.e. what deferring that import would save.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import MINIMAL_CMD, PYTHON, SERVER_CMD, RpcProcess, child_env

_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")
OURS = ("server", "tools")


@dataclass
class Node:
    name: str
    self_us: int
    cum_us: int
    depth: int
    parent: str | None


def parse(stderr: str) -> list[Node]:
    """The importtime tree; children are printed before their parent, one indent deeper (2 spaces)."""
    rows = []
    for line in stderr.splitlines():
        m = _LINE.match(line)
        if m and m.group(4) != "package":
            rows.append((m.group(4), int(m.group(1)), int(m.group(2)), len(m.group(3)) // 2))
    nodes: list[Node] = []
    parents: dict[int, str] = {}
    for name, self_us, cum_us, depth in reversed(rows):  # parents come first when read backwards
        parents[depth] = name
        nodes.append(Node(name, self_us, cum_us, depth, parents.get(depth - 1) if depth > 0 else None))
    return nodes


def profile(cmd: list[str], runs: int) -> tuple[dict[str, float], dict[str, str | None], float]:
    """Median self time (ms) per module, each module's importer, and the median spawn-to-initialize time."""
    selfs: dict[str, list[float]] = defaultdict(list)
    parent: dict[str, str | None] = {}
    starts = []
    for _ in range(runs):
        p = RpcProcess(cmd[-1], [cmd[0], "-X", "importtime", *cmd[1:]], child_env())
        try:
            starts.append(p.initialize())
        finally:
            p.close()
        for node in parse(p.stderr_text):
            selfs[node.name].append(node.self_us / 1000)
            parent.setdefault(node.name, node.parent)
    return {k: statistics.median(v) for k, v in selfs.items()}, parent, statistics.median(starts)


def ours(name: str | None) -> bool:
    return name is not None and name.split(".")[0] in OURS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("flags", nargs="*", default=["--sandbox"], help="server flags (default --sandbox)")
    ns = parser.parse_args(argv)

    server_self, server_parent, server_start = profile([*SERVER_CMD, *ns.flags], ns.runs)
    floor_self, _, floor_start = profile(MINIMAL_CMD, ns.runs)
    extra = {k: v for k, v in server_self.items() if k not in floor_self}
    total_server = sum(server_self.values())
    total_floor = sum(floor_self.values())
    print(f"python {PYTHON}; {ns.runs} runs each; medians")
    print(f"spawn -> initialize answer: server {server_start * 1000:.0f} ms, floor {floor_start * 1000:.0f} ms")
    print(f"sum of import self times: server {total_server:.0f} ms, floor {total_floor:.0f} ms")
    print(f"modules only the server loads: {len(extra)}, {sum(extra.values()):.1f} ms of import self time\n")

    by_pkg: dict[str, float] = defaultdict(float)
    for name, ms in extra.items():
        by_pkg[name.split(".")[0]] += ms
    print("extra import time by top-level package:")
    for pkg, ms in sorted(by_pkg.items(), key=lambda kv: -kv[1])[: ns.top]:
        print(f"  {ms:8.1f} ms  {pkg}")

    def first_ours(name: str) -> str | None:
        """The nearest of our modules on the import chain of ``name`` (itself included)."""
        seen: set[str] = set()
        cur: str | None = name
        while cur is not None and cur not in seen:
            if ours(cur):
                return cur
            seen.add(cur)
            cur = server_parent.get(cur)
        return None

    blame: dict[str, float] = defaultdict(float)
    blame_pkgs: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for name, ms in extra.items():
        owner = first_ours(name) or "(not via our code)"
        blame[owner] += ms
        if not ours(name):
            blame_pkgs[owner][name.split(".")[0]] += ms
    print("\nextra import time by the first of our modules on the import chain (third-party it pulls in included):")
    for owner, ms in sorted(blame.items(), key=lambda kv: -kv[1])[: ns.top]:
        pulled = ", ".join(f"{p} {v:.1f}" for p, v in sorted(blame_pkgs[owner].items(), key=lambda kv: -kv[1])[:4])
        importer = server_parent.get(owner)
        print(
            f"  {ms:8.1f} ms  {owner}"
            + (f"  (imported by {importer})" if importer else "")
            + (f"  [{pulled}]" if pulled else "")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
