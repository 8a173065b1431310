"""The memory floor for uploads: a process that only reads one upload's JSON-RPC request and parses it.

    python bench/floors/json_loads.py REQUEST_FILE

Prints one JSON line: the records parsed and the process's peak RSS (VmHWM, MiB) after ``json.loads``. Holding the
parsed request is the least any server that answers it must do.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    data = Path(sys.argv[1]).read_bytes()
    message = json.loads(data)
    del data
    records = len(message["params"]["arguments"]["events"])
    print(json.dumps({"records": records, "VmHWM": peak_mb()}))


if __name__ == "__main__":
    main()
