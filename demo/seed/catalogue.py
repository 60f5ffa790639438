"""The demo catalogue: coupons, rewards and content built from the products and guides.

``catalogue.json`` next to this module is the committed output of ``build_catalogue()``
(regenerate with ``python -m demo.seed.catalogue``); a test keeps the two in step. It is an
ordinary asset file, loaded through ``mca assets load`` like any customer's catalogue.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from demo.seed.content import CATEGORY_COUPONS, CONTENT
from demo.seed.products import CATEGORIES, PRODUCTS, Product

CATALOGUE_PATH = Path(__file__).with_name("catalogue.json")
ALWAYS = "2026-01-01T00:00:00Z"
# A few items are deliberately out of season or switched off, so filters have work to do.
EXPIRED = ("2025-10-01T00:00:00Z", "2026-03-01T00:00:00Z")
NOT_YET = ("2030-01-01T00:00:00Z", "2030-03-01T00:00:00Z")
_STOP = {"the", "and", "of", "a", "for", "with", "set", "pro", "(3-pack)", "(10)", "(30)", "-"}


def _tags(*words: str) -> list[str]:
    out: list[str] = []
    for word in words:
        for token in re.split(r"[\s/]+", word.lower()):
            token = token.strip("()'’,.:")
            if token and token not in _STOP and not token[0].isdigit() and token not in out:
                out.append(token)
    return out[:6]


def _coupon_value(price: float) -> float:
    return float(max(5, min(50, round(price * 0.15 / 5) * 5)))


def _product_coupon(p: Product, n: int) -> dict[str, Any]:
    value = _coupon_value(p.price)
    phrasing = [
        (f"${value:.0f} off the {p.name}", f"Save ${value:.0f} on the {p.name}: {p.blurb}."),
        (
            f"{p.name}: ${value:.0f} member discount",
            f"A members-only ${value:.0f} discount on the {p.name}, {p.blurb}.",
        ),
        (
            f"Take ${value:.0f} off {p.name}",
            f"Treat yourself to the {p.name} and take ${value:.0f} off: {p.blurb}.",
        ),
    ][n % 3]
    asset: dict[str, Any] = {
        "asset_id": f"cpn-{p.sku.lower()}",
        "kind": "coupon",
        "title": phrasing[0],
        "description": phrasing[1],
        "value": value,
        "currency": "USD",
        "category": p.category,
        "tags": _tags(p.category, p.name, "discount"),
        "active": n % 23 != 11,
        "valid_from": ALWAYS,
        "valid_until": None,
    }
    if n % 17 == 5:
        asset["valid_from"], asset["valid_until"] = EXPIRED
    elif n % 29 == 7:
        asset["valid_from"], asset["valid_until"] = NOT_YET
    return asset


def _product_reward(p: Product) -> dict[str, Any]:
    # Members earn 10 points per dollar; rewards cost 100 points per dollar of value (10% back).
    if p.price <= 130:
        points = round(p.price * 100 / 50) * 50
        title, what = f"Free {p.name} for {points:,} points", f"Redeem {points:,} points for a free {p.name}"
    else:
        points = 2500
        title, what = f"$25 off {p.name} for 2,500 points", f"Redeem 2,500 points for $25 off the {p.name}"
    return {
        "asset_id": f"rwd-{p.sku.lower()}",
        "kind": "reward",
        "title": title,
        "description": f"{what}, {p.blurb}.",
        "value": float(points),
        "currency": "points",
        "category": p.category,
        "tags": _tags(p.category, p.name, "reward", "points"),
        "active": True,
        "valid_from": ALWAYS,
        "valid_until": None,
    }


def _content(category: str, n: int, title: str, description: str) -> dict[str, Any]:
    return {
        "asset_id": f"cnt-{category}-{n + 1:02d}",
        "kind": "content",
        "title": title,
        "description": description,
        "value": None,
        "currency": None,
        "category": category,
        "tags": _tags(category, title, "guide"),
        "active": True,
        "valid_from": None,
        "valid_until": None,
    }


def _category_coupon(category: str, n: int) -> dict[str, Any]:
    title, description, value, _minimum = CATEGORY_COUPONS[n]
    fill = {"category": category, "Category": category.capitalize()}
    return {
        "asset_id": f"cpn-{category}-all-{n + 1}",
        "kind": "coupon",
        "title": title.format(**fill),
        "description": description.format(**fill),
        "value": value,
        "currency": "USD",
        "category": category,
        "tags": _tags(category, "discount", "shipping" if "Shipping" in title else "order"),
        "active": True,
        "valid_from": ALWAYS,
        "valid_until": None,
    }


def build_catalogue() -> list[dict[str, Any]]:
    """Every asset, in a stable order: deterministic by construction (no randomness)."""
    assets: list[dict[str, Any]] = []
    for n, product in enumerate(PRODUCTS):
        assets.append(_product_coupon(product, n))
        if n % 2 == 1:
            assets.append(_product_reward(product))
    for category in CATEGORIES:
        assets += [_category_coupon(category, i) for i in range(len(CATEGORY_COUPONS))]
        assets += [_content(category, i, t, d) for i, (t, d) in enumerate(CONTENT[category])]
    return assets


def render_catalogue() -> str:
    return json.dumps(build_catalogue(), indent=1, ensure_ascii=False) + "\n"


def write_catalogue(path: Path = CATALOGUE_PATH) -> Path:
    path.write_text(render_catalogue(), encoding="utf-8")
    return path


if __name__ == "__main__":
    print(f"wrote {len(build_catalogue())} assets to {write_catalogue()}")
