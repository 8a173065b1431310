"""The Membrane API layer: token sources (``auth``), HTTP and errors (``client``), the remembered connection
(``state``).

The executor built on it lives in ``server.backends.membrane.executor``.
"""

from server.backends.membrane.auth import (
    CliCredentials,
    MintedToken,
    StaticToken,
    TokenSource,
    has_membrane_credentials,
    mint_tenant_token,
    token_source_from_env,
    token_source_from_settings,
)
from server.backends.membrane.client import API_VERSION, DEFAULT_API_URL, MembraneClient
from server.backends.membrane.state import ConnectionStateStore, default_state_dir

__all__ = [
    "API_VERSION",
    "DEFAULT_API_URL",
    "CliCredentials",
    "ConnectionStateStore",
    "MembraneClient",
    "MintedToken",
    "StaticToken",
    "TokenSource",
    "default_state_dir",
    "has_membrane_credentials",
    "mint_tenant_token",
    "token_source_from_env",
    "token_source_from_settings",
]
