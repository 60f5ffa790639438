"""The console's browser tests share one running product and one headless Chromium per module."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from demo.in_thread import Product
from mca.db import Stores, connect
from mca.embedded import EmbeddedPostgres
from mca.settings import PROJECT_ROOT, Settings
from mca.testing.databases import copy_of
from mca.testing.triggers import triggers_without_experiments

CHROMIUM = Path("/usr/bin/chromium")
# The closed network refuses Chromium's background connections; these keep it from trying.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
SHOTS = PROJECT_ROOT / ".mca-console-shots"
KEYS = {"k-admin": ["admin"], "k-read": ["console"], "k-ingest": ["ingest"]}


@pytest.fixture(scope="module")
def module_db(pg_server: EmbeddedPostgres, template_url: str) -> Iterator[str]:
    name = f"c_{uuid.uuid4().hex[:12]}"
    admin = pg_server.url("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(copy_of(template_url.rsplit("/", 1)[1], name))
    yield pg_server.url(name)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def product(module_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Product]:
    from mca.testing import identify
    from state.catalogue import upsert_assets
    from state.embedding import get_embedder
    from tests.agent.world import CUSTOMERS, catalogue_rows

    embedder = get_embedder()
    identify(module_db, CUSTOMERS)
    with connect(module_db, autocommit=True) as conn:
        upsert_assets(conn, catalogue_rows(), embedder, progress=False)  # type: ignore[arg-type]
    # The console's stories need decisions that act: no customer of this world is held out.
    triggers = triggers_without_experiments(tmp_path_factory.mktemp("console-config"))
    settings = Settings(
        state_url=module_db,
        ops_url=module_db,
        data_dir=tmp_path_factory.mktemp("console-data"),
        api_keys=KEYS,
        triggers_file=triggers,
    )
    with Product(settings, Stores(state_url=module_db, ops_url=module_db), embedder).running() as running:
        yield running


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: apt-get install -y chromium (make install does it)")
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh tab with no console cookie."""
    browser.clear_cookies()
    tab = browser.new_page()
    tab.set_default_timeout(15_000)
    try:
        yield tab
    finally:
        tab.close()


AXE = Path(__file__).parent / "vendor" / "axe-core-4.14.1.min.js"  # from the npm registry, MPL-2.0


def axe_violations(page: Any) -> list[str]:
    """axe-core's WCAG 2 A/AA violations on the page as shown, one line each (rule: nodes).
    Evaluated over the DevTools protocol, so the page's own CSP stays in force."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate("() => {" + AXE.read_text() + "\n}")
    found = page.evaluate(
        """async () => (await axe.run(document, {runOnly: ['wcag2a', 'wcag2aa']})).violations
             .map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))"""
    )
    return list(found)


def shot(page: Any, name: str) -> Path:
    """A screenshot of the page under .mca-console-shots/, once axe-core finds nothing wrong with it."""
    assert axe_violations(page) == [], name
    SHOTS.mkdir(exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
