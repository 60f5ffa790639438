"""SMS segment counting (GSM-7 vs UCS-2) and the opt-out footer."""

from __future__ import annotations

from mcp_tools.actions import sms_body
from mcp_tools.policy import parse_policy
from mcp_tools.sms import sms_length


def test_gsm7_single_and_concatenated() -> None:
    assert (sms_length("a" * 160).encoding, sms_length("a" * 160).segments) == ("GSM-7", 1)
    assert sms_length("a" * 161).segments == 2  # 153 per part once concatenated
    assert sms_length("a" * 306).segments == 2 and sms_length("a" * 307).segments == 3
    assert sms_length("").segments == 0


def test_extension_characters_cost_two_septets() -> None:
    text = "€" * 80  # 160 septets: still one segment
    assert sms_length(text).units == 160 and sms_length(text).segments == 1
    assert sms_length("€" * 81).segments == 2


def test_ucs2_when_any_character_is_outside_gsm7() -> None:
    assert sms_length("ç" * 70).encoding == "UCS-2"  # ç (lower case) is not in GSM 03.38
    assert sms_length("ç" * 70).segments == 1 and sms_length("ç" * 71).segments == 2
    assert sms_length("Hi 👋").units == 5  # the emoji is a surrogate pair: two UTF-16 units
    assert sms_length("ü" * 160).encoding == "GSM-7"


def test_opt_out_footer_added_once() -> None:
    policy = parse_policy("sms: {opt_out_text: 'Reply STOP to opt out.', append_opt_out: true}\n")
    assert sms_body(policy, "Hello") == "Hello Reply STOP to opt out."
    assert sms_body(policy, "Hello. reply stop to opt out.") == "Hello. reply stop to opt out."
    off = parse_policy("sms: {append_opt_out: false}\n")
    assert sms_body(off, "Hello") == "Hello"
