"""The tools agents see: one module per tool family, listed once in ``tools.catalog.CATALOG``."""
