"""The operator console at /console: server-rendered pages over the ops and state stores (issue 12)."""
