"""The demo LMS and the Stripe sandbox served on loopback ports, and Debian's Chromium driven by Playwright.

The tests write the README's screenshots (docs/screenshots) only when LMS_STRIPE_SCREENSHOTS=1, as
`make screenshots` sets it: `make test` leaves the tracked pictures alone."""
from __future__ import annotations

import os
import shutil
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest
from werkzeug.serving import make_server

CHROMIUM = os.environ.get("LMS_STRIPE_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
WRITE_SCREENSHOTS = os.environ.get("LMS_STRIPE_SCREENSHOTS") == "1"

if not (shutil.which(CHROMIUM) or Path(CHROMIUM).exists()):
    pytest.skip(f"no Chromium at {CHROMIUM} (.ci/run installs Debian's chromium)", allow_module_level=True)

playwright_api = pytest.importorskip("playwright.sync_api")


class _Late:
    """A WSGI app set after its server is bound (the sandbox needs the app's port, the app the sandbox's)."""

    app = None

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


@contextmanager
def serve_demo(folder: Path, *, sandbox_options: dict | None = None, **config):
    """The demo on a loopback port with its sandbox: {"base", "app", "sandbox"}; ``config`` overrides the
    demo's (payments start off, for the administrator to enable); ``sandbox_options`` are the sandbox's
    (``{base}`` in a text is the demo's address)."""
    from lms_stripe_plugin.demo import SANDBOX_KEYS, create_app
    from lms_stripe_plugin.sandbox import SandboxServer

    late = _Late()
    server = make_server("127.0.0.1", 0, late, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    sandbox = SandboxServer(webhook_url=f"{base}/payments/webhook", webhook_secret=SANDBOX_KEYS["webhook_secret"],
                            webhook_retry_backoff=0.2, terms_of_service_url=f"{base}/terms",
                            **{name: value.format(base=base) if isinstance(value, str) else value
                               for name, value in (sandbox_options or {}).items()}).start()
    database = folder / "demo.sqlite"
    late.app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}", "LMS_STRIPE_API_BASE": sandbox.url,
                           "LMS_STRIPE_PUBLIC_URL": base,
                           "DEMO_ENABLE_PAYMENTS": False, "DEMO_TERMS_URL": f"{base}/terms",
                           "LMS_STRIPE_MAIL_FILE": str(folder / "mail.mbox"),
                           "LMS_STRIPE_SMS_FILE": str(folder / "sms.jsonl"), **config})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"base": base, "app": late.app, "sandbox": sandbox}
    finally:
        server.shutdown()
        sandbox.stop()


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with serve_demo(tmp_path_factory.mktemp("browser")) as served:
        yield served


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1200, "height": 900}, locale="en-GB", accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()


def shot(page, name: str) -> None:
    """The README's screenshot ``name``, written only by `make screenshots` (LMS_STRIPE_SCREENSHOTS=1)."""
    if not WRITE_SCREENSHOTS:
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
