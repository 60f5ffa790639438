"""The code a coupon carries, one per decision and asset, so a redemption names its decision.

The code is derived, not drawn: a retried decision (same decision id, same asset) sends the same
code, which keeps the outbox's idempotency, and nothing has to be stored before the send to make
the code unique. Ingest upper-cases a redeemed code (``ingest.fields.coupon_code``), so the
alphabet is upper case only, and without I, L, O and U (Crockford's base 32), which people misread
when they type a code from an e-mail or a receipt.
"""

from __future__ import annotations

import hashlib

PREFIX = "MCA-"
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base 32
# 12 symbols are 60 bits: among a million coupons the chance that any two share a code is
# about 1e12 / 2**61, below one in two million.
SYMBOLS = 12
GROUP = 4


def coupon_code_for(decision_id: str, asset_id: str) -> str:
    """``MCA-XXXX-XXXX-XXXX``: a hash of the decision and the asset, readable and typeable."""
    for name, value in (("decision_id", decision_id), ("asset_id", asset_id)):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{name} must be a non-empty string")
    # A separator that neither id can contain keeps ("a", "bc") and ("ab", "c") apart.
    digest = hashlib.sha256(f"{decision_id}\x00{asset_id}".encode()).digest()
    number = int.from_bytes(digest, "big") >> (256 - 5 * SYMBOLS)
    symbols = "".join(ALPHABET[(number >> (5 * i)) & 31] for i in reversed(range(SYMBOLS)))
    return PREFIX + "-".join(symbols[i : i + GROUP] for i in range(0, SYMBOLS, GROUP))
