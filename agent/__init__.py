"""The brain: trigger service, job queue, reasoning loop over MCP tools, model providers."""
