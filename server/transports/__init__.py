"""How MCP messages reach the server: stdio and Streamable HTTP."""
