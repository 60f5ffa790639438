"""SMS content as the guard reads it: banned phrases after normalisation (NFKC, format characters,
look-alike letters), and links and phone numbers only from the catalogue or the allow-list."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer

from mca.testing import count
from mcp_tools.sms_content import banned_in, link_hosts, phone_numbers
from tests.mcp_tools.helpers import call

LOOSE_SMS = {
    "caps": {"day": 100, "week": 100, "month": 100},
    "channels": {"sms": {"min_gap_hours": 0, "caps": {"day": 100}}},
    "budgets": {"per_user": {"month": 100000}},
}
DISGUISED = [
    "Act\u200bnow for a deal",  # zero-width space
    "A\u00adct now for a deal",  # soft hyphen
    "\u0410ct n\u043ew for a deal",  # Cyrillic A and o
    "\uff21\uff43\uff54 \uff4e\uff4f\uff57 for a deal",  # full-width
    "\U0001d41a\U0001d41c\U0001d42d \U0001d427\U0001d428\U0001d430 for a deal",  # mathematical bold
    "Act n0w for a deal",  # digit zero for o
    "\u00e1ct n\u00f3w for a deal",  # accents
    "ACT\u2060NOW for a deal",  # word joiner
    "cIick here",  # capital i for l
]


@pytest.mark.parametrize("text", DISGUISED)
def test_disguised_banned_phrases_are_found(text: str) -> None:
    assert banned_in(text, ["act now", "click here"]), text


def test_plain_text_is_not_banned() -> None:
    assert banned_in("Your tent is ready for pickup. Reply STOP to opt out.", ["act now", "click here"]) == []


def test_links_and_numbers_are_found_whatever_their_form() -> None:
    text = "Go to HTTPS://Bit.ly/x, www.shop.example.com/a or evil.co! Call +1 (555) 010-2030."
    assert link_hosts(text) == ["bit.ly", "shop.example.com", "evil.co"]
    assert link_hosts("bit\u200b.ly/x") == ["bit.ly"]
    assert phone_numbers(text) == ["+15550102030"]
    assert phone_numbers("Save $35 on 2026-11-23, 30 hours of battery, 20% off") == []


async def test_disguised_banned_phrase_is_refused_through_the_guard(
    server: MCPServer[Any], set_policy: Callable[..., None], world: str
) -> None:
    set_policy(**LOOSE_SMS)
    async with Client(server) as client:
        results = [
            await call(client, "send_sms", {"user_id": "u_ok", "text": t, "reason": "r"}, decision=f"d{i}")
            for i, t in enumerate(DISGUISED[:5])
        ]
    assert [d["reason"] for _, d in results] == ["banned_phrase"] * 5
    assert count(world, "outbox") == 0


async def test_links_and_numbers_need_the_catalogue_or_the_allow_list(
    server: MCPServer[Any], set_policy: Callable[..., None], world: str
) -> None:
    set_policy(**LOOSE_SMS, sms={"allowed_links": ["example.com"], "allowed_numbers": ["+1 555 0100 999"]})
    with psycopg.connect(world, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO assets (asset_id, kind, title, description, active, updated_at) VALUES "
            "('C1', 'content', 'Trail guide', %s, true, now())",
            ("Read it at trails.example.org or call 0800 123 4567",),
        )

    def sms(text: str) -> dict[str, Any]:
        return {"user_id": "u_ok", "text": text, "reason": "r"}

    async with Client(server) as client:
        unknown_link = await call(client, "send_sms", sms("Your gift: bit.ly/free-gift"), decision="a")
        unknown_number = await call(client, "send_sms", sms("Questions? Call 555 867 5309"), decision="b")
        both = await call(client, "send_sms", sms("Text 555-867-5309 or see https://evil.co"), decision="c")
        allowed_link = await call(client, "send_sms", sms("See https://shop.example.com/tents"), decision="d")
        allowed_number = await call(client, "send_sms", sms("Call +1 (555) 0100-999"), decision="e")
        catalogue = await call(
            client, "send_sms", sms("Guide: trails.example.org, 0800-123-4567"), decision="f"
        )
    assert unknown_link[1]["reason"] == "sms_unknown_link" and "bit.ly" in unknown_link[1]["message"]
    assert unknown_number[1]["reason"] == "sms_unknown_number"
    assert both[1]["reasons"] == ["sms_unknown_link", "sms_unknown_number"]
    assert [r[1]["status"] for r in (allowed_link, allowed_number, catalogue)] == ["allowed"] * 3
    assert count(world, "outbox") == 3
