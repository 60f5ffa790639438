"""Who is calling, and how far their word is trusted.

- In-process (memory transport) and stdio: no HTTP request; the caller is the server's
  `local_caller` ("agent" for the in-process agent, chosen by whoever built the server).
- Streamable HTTP: the caller is the name its bearer token maps to in `Settings.mcp_tokens`;
  the HTTP mount refuses requests without a valid token (401) before they reach a tool, and
  the tool re-derives the name from the same header, so nothing a client sends can rename it.

What a caller may do comes from the policy's `callers:` section. Only callers with
`trust_meta: true` (the agent) may choose their trigger through the `mca.trigger` request meta;
everyone else always acts as their configured trigger, so sending meta cannot widen a
caller's tools or budget. `mca.decision_id` and `mca.idempotency_key` from any caller only
feed the idempotency key, which is scoped by caller name. `mca.user_id` from a trusted caller
binds the call to the decision's customer: a call naming anyone else is denied (`subject_mismatch`).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mca.auth import Unauthorized, credential
from mca.limits import MAX_ID_CHARS
from mcp_tools.contract import META_DECISION_ID, META_IDEMPOTENCY_KEY, META_TRIGGER, META_USER_ID
from mcp_tools.guard import CallContext

if TYPE_CHECKING:
    from mcp.server.context import ServerRequestContext
    from mcp.server.mcpserver import Context

    from mcp_tools.runtime import ToolDeps

UNSPECIFIED_TRIGGER = "unspecified"
MAX_META_CHARS = MAX_ID_CHARS  # mca.user_id must hold any id ingest accepts


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token in the forms the HTTP gate accepts (`mca.auth.credential`: Bearer or Basic)."""
    try:
        return credential(headers.get("authorization") or headers.get("Authorization"))
    except Unauthorized:  # the gate already refused such a request
        return None


def caller_for_token(token: str | None, tokens: Mapping[str, str]) -> str | None:
    """The caller name for a token; compared in constant time against every configured token."""
    if not token:
        return None
    found = None
    for known, name in tokens.items():
        if hmac.compare_digest(known.encode(), token.encode()):
            found = name
    return found


def _meta_str(meta: Mapping[str, Any], key: str) -> str | None:
    value = meta.get(key)
    if value is None:
        return None
    text = str(value)
    return text[:MAX_META_CHARS] if text else None


def call_context(ctx: Context, deps: ToolDeps) -> CallContext:
    return request_call_context(ctx.request_context, deps)


def request_call_context(request_ctx: ServerRequestContext[Any, Any], deps: ToolDeps) -> CallContext:
    """Who calls and under which trigger, from one MCP request (a tool call or tools/list)."""
    request = request_ctx.request
    meta: Mapping[str, Any] = request_ctx.meta or {}
    if request is not None:
        headers = getattr(request, "headers", {}) or {}
        caller = caller_for_token(bearer_token(headers), deps.settings.auth.mcp_tokens) or "anonymous"
    else:
        caller = deps.local_caller
    policy = deps.service.policy().caller(caller)
    trigger = (_meta_str(meta, META_TRIGGER) if policy.trust_meta else None) or (
        UNSPECIFIED_TRIGGER if policy.trust_meta else policy.trigger
    )
    # Only a trusted caller binds the call to its decision's customer; for anyone else meta
    # could only narrow what they may do, so it is simply not read.
    subject = _meta_str(meta, META_USER_ID) if policy.trust_meta else None
    return CallContext(
        caller=caller,
        trigger=trigger,
        decision_id=_meta_str(meta, META_DECISION_ID),
        subject=subject,
        idempotency_key=_meta_str(meta, META_IDEMPOTENCY_KEY),
    )
