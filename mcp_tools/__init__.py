"""mcp_tools: the hands. MCP server and tools, PolicyGuard, budget ledger, outbox dispatcher.

Contracts other packages rely on (kept stable):

- ``mcp_tools.server.build_server(settings, stores, *, clock=None, embedder=None,
  local_caller="agent") -> MCPServer[ToolDeps]`` — the official SDK's ``MCPServer``. Pools, the
  policy store, the guard service and the embedder reach tools through the typed lifespan
  context (``mcp_tools.runtime.ToolDeps``), opened on first lifespan entry and shared.
- The agent connects in-process: ``async with mcp.Client(server) as client`` and calls
  ``client.call_tool(name, args, meta={"mca.decision_id": ..., "mca.trigger": ...})``.
  ``mca.decision_id`` feeds the idempotency key sha256(caller, decision_id, tool, canonical
  args): the same call retried returns the first result (``"replayed": true``) and sends
  nothing new. ``mca.trigger`` selects the tool allow-list and per-trigger budget.
- Trust (``mcp_tools.auth``): in-process and stdio calls have no token; their caller is the
  server's ``local_caller`` ("agent" in-process; ``mca mcp --stdio`` uses "stdio", which the
  default policy treats as a read-only ``default`` caller; ``--caller agent`` trusts it). Over HTTP
  the caller is the name of its bearer token in ``Settings.mcp_tokens`` (no/unknown token →
  401, checked by ``mca.auth``; in open mode, nothing configured, the caller is "anonymous").
  What a caller may do is the policy's ``callers:`` entry; only ``trust_meta: true``
  callers may pick their trigger through meta, others always act as their configured
  trigger, so meta cannot widen anyone's permissions. A trusted caller's decision id that names
  a job (``agent_jobs``) binds the call to that job's trigger, customer and tools (the triggers
  file's list, intersected with the policy's: ``tool_not_in_trigger``), see ``mcp_tools.scope``;
  ``tools/list`` shows a caller only the tools it may call.
- External callers without decisions send ``mca.idempotency_key`` in meta; without it identical
  calls replay only within the caller's ``replay_window_s``. A replay carries ``"replayed": true``
  and ``"replayed_from"``.
- Switches (``mcp_tools.switches``): the ``switches`` ops table overrides the policy file's
  ``kill_switch`` / ``shadow``; ``effective_policy(pool_or_conn, policy)`` is what the guard and
  the dispatcher act on, read on every call. ``mca switch ...``, ``GET/PUT /switches`` (admin).
- The contract (``mcp_tools.contract``): tool names (``Tool``), statuses (``Status``), reason
  codes (``Reason``), request-meta keys (``META_*``) and the ``Outcome`` model, published as the
  side-effecting tools' ``outputSchema``. The agent imports it; nothing else spells these names.
- Tool results: structured content ``{"status": ..., "reason": ..., "message": ...}``.
  status ``allowed`` (``outbox_id``), ``deferred`` (``until``, ``pending_id``), ``held``
  (``approval_id`` for ``mca approve``/``reject``), ``shadow`` (recorded, never sent) are
  normal results; ``denied`` (guard reason code, maybe ``retry_at``) and ``error`` (bad input:
  ``unknown_user``, ``unknown_asset``, ``asset_inactive``, ``asset_expired``,
  ``text_too_long``, ``invalid_argument``...) are MCP error results (``isError``).
  Reason codes: ``mcp_tools.contract.Reason`` (the guard's, described, in ``GUARD_REASONS``).
- Ops tables (``sql/ops/1xx``): ``tool_calls`` (one per judged call, ``decision_id`` indexed
  for decision records), ``budget_counters``/``budget_ledger``, ``contact_counters``/
  ``contact_last``, ``outbox``, ``audit_log``, ``pending_actions``, ``suppressions``.
- Streamable HTTP: ``mcp_tools.web.extension`` (discovered by ``mca/app.py``) serves ``POST
  /mcp`` (stateless, JSON responses) behind ``mcp_tools.http.BearerAuth``;
  ``mcp_tools.http.asgi_app(settings, stores)`` gives the ASGI app + lifespan for other hosts.
- Idempotency is the unique ``tool_calls.idem_key``: a retry (or a concurrent twin) fails its
  insert and gets the stored first result. Deferred calls (quiet hours) wait in
  ``pending_actions`` and are re-judged when due by ``mca dispatch``; held calls wait for
  ``mca approve ID`` / ``mca reject ID`` (``mca holds`` lists them). Contact counters are
  consumed by an allowed call even if delivery later fails; budget reservations are released
  when a row is dead-lettered or suppressed.
- Dispatch routing: ``Settings.dispatch_provider`` (default ``log``) and
  ``Settings.dispatch_routes`` (outbox kind → provider: sms, coupon, crm, points).
- CLI (``mcp_tools.cli.register``): ``mca mcp --stdio``, ``mca dispatch``, ``mca approve ID``,
  ``mca reject ID``, ``mca audit export --since ... --format csv|jsonl``, ``mca policy check``.
"""
