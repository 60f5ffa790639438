"""Masking for what `mca config` and error messages show: nothing of a secret, URLs kept readable."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import SecretStr

# JSON maps whose keys are the credentials themselves (an API key, an MCP bearer token).
CREDENTIAL_KEYED = ("api_keys", "mcp_tokens")
MASK = "********"
URL_MASK = "***"  # shorter, inside a URL that stays readable
# Query parameters that carry credentials in a URL (libpq accepts password=..., webhooks tokens).
_SECRET_PARAM = re.compile(r"pass|secret|token|key|auth|sig", re.IGNORECASE)


def masked_value(name: str, value: Any) -> Any:
    if isinstance(value, SecretStr):
        return mask_secret(value.get_secret_value())
    if name in CREDENTIAL_KEYED and isinstance(value, dict):
        # Numbered so two keys stay two entries; nothing of the key itself is shown.
        return {f"{MASK} #{i}": v for i, v in enumerate(value.values(), start=1)}
    if isinstance(value, list):
        return [masked_value(name, item) for item in value]
    if isinstance(value, str) and name.endswith("_url"):
        return mask_url(value)
    if isinstance(value, Path):
        return str(value)
    return value


def mask_secret(secret: str) -> str:
    """Nothing of a secret, only whether it is set: a prefix narrows a brute force and identifies keys."""
    return MASK if secret else ""


def mask_url(url: str) -> str:
    """Hide the password and credential-like query values of a URL, keep everything else readable."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, hostport = netloc.rpartition("@")
        netloc = f"{userinfo.split(':', 1)[0]}:{URL_MASK}@{hostport}"
    query = parts.query
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(_SECRET_PARAM.search(k) for k, _ in pairs):
        query = urlencode([(k, URL_MASK if _SECRET_PARAM.search(k) else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
