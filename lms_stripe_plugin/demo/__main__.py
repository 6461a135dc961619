"""``python -m lms_stripe_plugin.demo``: the demo LMS on http://127.0.0.1:5000 with the offline Stripe sandbox."""
from __future__ import annotations

import argparse
import os
import tempfile
import threading
from pathlib import Path

from lms_stripe_plugin.sandbox import SandboxServer
from lms_stripe_plugin.tasks import send_due_reminders

from . import create_app
from .seed import SANDBOX_ACCOUNT, seed_payment_requests
from .sandbox_keys import SANDBOX_KEYS


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the demo LMS with lms-stripe-plugin.")
    parser.add_argument("--host", default=os.environ.get("DEMO_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("DEMO_PORT", "5000")))
    parser.add_argument("--sandbox-port", type=int, default=int(os.environ.get("DEMO_SANDBOX_PORT", "12111")))
    parser.add_argument("--platform", action="store_true",
                        help="Run as a platform of two schools, each connecting its own Stripe account (Connect).")
    args = parser.parse_args()
    base = f"http://{args.host}:{args.port}"
    config = {"DEMO_TERMS_URL": f"{base}/terms", "LMS_STRIPE_PUBLIC_URL": os.environ.get("DEMO_PUBLIC_URL", base)}
    connect = {}
    if args.platform:  # the operator's platform keys in the config; Connect events to the same endpoint
        config.update(LMS_STRIPE_PLATFORM=True, LMS_STRIPE_PUBLISHABLE_KEY=SANDBOX_KEYS["publishable_key"],
                      LMS_STRIPE_SECRET_KEY=SANDBOX_KEYS["secret_key"],
                      LMS_STRIPE_WEBHOOK_SECRETS=[SANDBOX_KEYS["webhook_secret"]], LMS_STRIPE_APPLICATION_FEE=200)
        connect = {"connect_webhook_url": f"{base}/payments/webhook",
                   "connect_webhook_secret": SANDBOX_KEYS["webhook_secret"]}
    if not os.environ.get("DEMO_DATABASE_URL"):
        # The sandbox keeps its objects in memory: start the demo's database afresh with it.
        database = Path(tempfile.gettempdir()) / "lms-stripe-demo.sqlite"
        database.unlink(missing_ok=True)
        config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{database}"
    sandbox = None
    if not os.environ.get("LMS_STRIPE_API_BASE"):
        # The sandbox's account has the school's terms of sale in its public details, as Stripe asks of an
        # account whose Checkout collects consent to them.
        sandbox = SandboxServer(port=args.sandbox_port, host=args.host, webhook_url=f"{base}/payments/webhook",
                                webhook_secret=SANDBOX_KEYS["webhook_secret"], terms_of_service_url=config["DEMO_TERMS_URL"],
                                **SANDBOX_ACCOUNT, **connect)
        sandbox.start()
        config["LMS_STRIPE_API_BASE"] = sandbox.url
    app = create_app(config)
    if not os.environ.get("DEMO_DATABASE_URL"):
        for name in ("LMS_STRIPE_MAIL_FILE", "LMS_STRIPE_SMS_FILE"):  # the inbox starts afresh too
            Path(app.config[name]).unlink(missing_ok=True)
    if sandbox is not None and not args.platform:  # a platform's schools first connect their Stripe account
        with app.app_context():
            seed_payment_requests(app)
    print(f" * Demo LMS: {base}/catalog  (switch users at the top right)")
    if sandbox is not None:
        print(f" * Offline Stripe sandbox: {sandbox.url}  (card 4242 4242 4242 4242 pays)")
    stop = threading.Event()
    threading.Thread(target=_reminders, args=(app, stop), name="demo-reminders", daemon=True).start()
    try:
        app.run(host=args.host, port=args.port, threaded=True, use_reloader=False)
    finally:
        stop.set()
        if sandbox is not None:
            sandbox.stop()


def _reminders(app, stop: threading.Event) -> None:
    """What a host's cron does with `flask lms-stripe reminders run`: here, every minute."""
    while not stop.wait(60):
        try:
            send_due_reminders(app)
        except Exception as err:  # noqa: BLE001 - the demo keeps serving; the next minute tries again
            app.logger.warning("Reminders failed: %s", err)


if __name__ == "__main__":
    main()
