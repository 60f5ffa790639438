"""Measurement: who is held out, and whether mca's actions caused anything (uplift)."""
