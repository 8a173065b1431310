"""The MCP wiring: the low-level server's handlers and the resources it lists."""
