"""The test suite: everything through real MCP clients, against fakes served on loopback."""
