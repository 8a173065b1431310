"""clevertap-mcp: an MCP server that lets AI agents work with a CleverTap account safely."""
