"""The report period (``--since 30d``): the one duration grammar of `mca.durations`."""

from mca.durations import parse_since

__all__ = ["parse_since"]
