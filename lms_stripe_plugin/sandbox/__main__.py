"""``python -m lms_stripe_plugin.sandbox``: run the Stripe sandbox on its own."""

from __future__ import annotations

import argparse
import sys
import threading

from .server import SandboxServer


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lms_stripe_plugin.sandbox",
                                     description="Offline stand-in for Stripe's test mode.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=12111, help="port (default 12111; 0 picks a free one)")
    parser.add_argument("--webhook-url", default=None, help="where to POST webhook events")
    parser.add_argument("--webhook-secret", default="whsec_sandbox", help="signing secret of the webhooks")
    parser.add_argument("--connect-webhook-url", default=None,
                        help="where to POST the events of connected accounts (Connect webhooks)")
    parser.add_argument("--connect-webhook-secret", default="whsec_sandbox_connect",
                        help="signing secret of the Connect webhooks")
    parser.add_argument("--account-verification", default="verified",
                        choices=("verified", "documents_required", "pending"),
                        help="what verifying a connected account's details gives by default")
    parser.add_argument("--public-url", default=None, help="base URL for hosted pages in API objects")
    parser.add_argument("--delayed-settle-seconds", type=float, default=None,
                        help="settle SEPA debits automatically after this many seconds")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Serve until interrupted."""
    args = _parser().parse_args(argv)
    server = SandboxServer(
        port=args.port, host=args.host, quiet=False, webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret, public_url=args.public_url,
        delayed_settle_seconds=args.delayed_settle_seconds, connect_webhook_url=args.connect_webhook_url,
        connect_webhook_secret=args.connect_webhook_secret, account_verification=args.account_verification,
    ).start()
    print(f"Stripe sandbox listening on {server.url}", flush=True)
    print(f'  stripe.StripeClient("sk_test_sandbox", base_addresses={{"api": "{server.url}"}})', flush=True)
    if args.webhook_url:
        print(f"  webhooks -> {args.webhook_url} (secret {args.webhook_secret})", flush=True)
    if args.connect_webhook_url:
        print(f"  Connect webhooks -> {args.connect_webhook_url} (secret {args.connect_webhook_secret})", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
