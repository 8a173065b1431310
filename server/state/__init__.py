"""State the server keeps between calls: confirm tokens, cursor handles, scanned events, schemas."""
