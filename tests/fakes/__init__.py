"""Fakes of the upstream APIs, strict where the real ones are strict."""
