"""The sandbox's test-only admin knobs: change runtime knobs (faults included) and read statistics."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from typing import Any

from .config import RUNTIME_KNOBS, SandboxConfig
from .faults import Fault
from .messages import bad


def apply_knobs(config: SandboxConfig, lock: threading.Lock, values: Mapping[str, Any]) -> None:
    """Change runtime knobs on ``config``; unknown names or bad values raise HttpError 400 (TypeError/ValueError for
    values that do not convert)."""
    unknown = set(values) - RUNTIME_KNOBS
    if unknown:
        raise bad(f"Unknown knobs: {', '.join(sorted(unknown))}")
    types = {f.name: f.type for f in dataclasses.fields(config)}
    with lock:
        for name, value in values.items():
            if name == "fail_next":
                if not isinstance(value, list) or not all(isinstance(v, (list, tuple)) and len(v) == 2 for v in value):
                    raise bad("fail_next must be a list of [status, body] pairs")
                value = [(int(v[0]), v[1]) for v in value]
            elif name == "faults":
                if not isinstance(value, list):
                    raise bad('faults must be a list of fault objects, e.g. [{"kind": "503", "times": 2}]')
                value = [Fault.parse(v) for v in value]
            elif name == "discarded_events":
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise bad("discarded_events must be a list of event names")
            elif name == "max_concurrency":
                value = None if value is None else int(value)
            elif "float" in str(types[name]):
                value = float(value)
            else:
                value = int(value)
            setattr(config, name, value)
