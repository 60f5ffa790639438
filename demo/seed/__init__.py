"""The demo world: a synthetic loyalty programme (users, events) and the asset catalogue."""
