"""Limits every layer must agree on: what ingest accepts, the tools and the decision API must
be able to act on (a customer whose id only one side accepts could never be reached)."""

from __future__ import annotations

# User, event, asset, decision ids and the ids carried in MCP request meta.
MAX_ID_CHARS = 256
