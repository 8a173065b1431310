"""Strict JSON for the wire: what CleverTap and Membrane can take, refused as an input error otherwise."""

from __future__ import annotations

import json
from typing import Any

from tools.errors import InputError


def strict_json(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON. NaN and infinities (not JSON), lone UTF-16 surrogates (not text) and nesting
    too deep to encode are input errors, found in the C encoder's one pass instead of a walk in Python."""
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False, check_circular=False)
        return text.encode()
    except UnicodeEncodeError:  # before ValueError, its base class
        raise InputError(
            "a text value holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is not valid Unicode.",
            hint="Send well-formed UTF-8 text.",
        ) from None
    except ValueError:
        raise InputError("NaN and infinite numbers are not valid JSON values.", hint="Send finite numbers.") from None
    except RecursionError:
        raise InputError(
            "the arguments are nested too deeply.", hint="No CleverTap call needs that much nesting: flatten the value."
        ) from None
    except TypeError:
        raise InputError("the arguments are not JSON values.", hint="Send JSON objects, arrays and scalars.") from None
