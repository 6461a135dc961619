"""``flask lms-stripe …``: database migrations, failed-event replay, reconciliation with Stripe, secrets at
rest, the reminders of payment requests, the worker of an RQ queue."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import click
from flask import current_app
from flask.cli import AppGroup

from . import migrate, tasks
from .accounts import settings as payment_settings
from .billing import payment_links
from .core import audit, jobs, queue, schools
from .core.state import PluginState, this_app
from .sync.reconcile import reconcile
from .sync.webhooks import replay_failed

lms_stripe_cli = AppGroup("lms-stripe", help="Payments with Stripe (lms-stripe-plugin).")
db_cli = AppGroup("db", help="The plugin's tables (its own Alembic history).")
events_cli = AppGroup("events", help="Stored Stripe webhook events.")
secrets_cli = AppGroup("secrets", help="The Stripe secrets stored encrypted.")
reminders_cli = AppGroup("reminders", help="The reminders of payment requests.")
lms_stripe_cli.add_command(db_cli)
lms_stripe_cli.add_command(events_cli)
lms_stripe_cli.add_command(secrets_cli)
lms_stripe_cli.add_command(reminders_cli)


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Create or update the plugin's tables."""
    migrate.upgrade(revision)
    click.echo(f"lms-stripe tables at {revision}.")


@db_cli.command("downgrade")
@click.argument("revision", default="-1")
def db_downgrade(revision: str) -> None:
    """Step the plugin's tables back (``base`` removes them)."""
    migrate.downgrade(revision)
    click.echo(f"lms-stripe tables at {revision}.")


@db_cli.command("current")
def db_current() -> None:
    migrate.current()


@events_cli.command("replay")
@click.option("--limit", default=500, show_default=True)
def events_replay(limit: int) -> None:
    """Handle again the stored events whose handling failed."""
    results = replay_failed(current_app.extensions["lms_stripe"], limit=limit)
    for event_id, outcome in results:
        click.echo(f"{event_id}: {outcome.message}")
    failed = sum(1 for _id, outcome in results if outcome.status >= 400)
    click.echo(f"{len(results)} replayed, {failed} still failing.")
    if failed:
        raise SystemExit(1)


@secrets_cli.command("rotate")
def secrets_rotate() -> None:
    """Encrypt the stored secrets (and the payment links' tokens) again with the first encryption key (after
    putting a new key first in LMS_STRIPE_ENCRYPTION_KEYS, or moving the old SECRET_KEY to
    SECRET_KEY_FALLBACKS); then the old key can be removed. Exits 1 if one cannot be read with any key."""
    session = current_app.extensions["lms_stripe"].session
    try:
        outcomes = payment_settings.rotate_secrets(session)
        tokens = payment_links.rotate_tokens(session)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    for name, outcome in outcomes.items():
        click.echo(f"{name}: {outcome.value}")
    for link_id, outcome in tokens.items():
        click.echo(f"payment link {link_id}: {outcome.value}")
    if not outcomes and not tokens:
        click.echo("No secret is stored.")
    if payment_settings.SecretState.UNREADABLE in (*outcomes.values(), *tokens.values()):
        raise SystemExit(1)


@lms_stripe_cli.command("reconcile")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]), default=None,
              help="Start of the period (default: 30 days ago).")
@click.option("--dry-run", is_flag=True, help="Report what would be repaired, change nothing.")
def reconcile_command(since, dry_run: bool) -> None:
    """Compare Stripe's sessions, invoices, refunds and disputes with our tables, and repair."""
    since = (since.replace(tzinfo=timezone.utc) if since else datetime.now(timezone.utc) - timedelta(days=30))
    state = current_app.extensions["lms_stripe"]
    every = payment_settings.every_school(state.session)
    state.session.commit()  # end the read
    failed = False
    for school in every:
        with audit.acting(audit.VIA_COMMAND), schools.scope(school):
            report = reconcile(state, since=since, dry_run=dry_run)
        if len(every) > 1:
            click.echo(f"School {school or '(default)'}:")
        for line in report.lines(dry_run):
            click.echo(line)
        failed = failed or any(f.error for f in report.findings)
    if failed:
        raise SystemExit(1)


@reminders_cli.command("run")
@click.option("--dry-run", is_flag=True, help="List the reminders that have come, send nothing.")
@click.option("--here", is_flag=True, help="Run in this process even when a queue is configured.")
def reminders_run(dry_run: bool, here: bool) -> None:
    """Send the reminders that have come (run it every few minutes, from cron), then retry the messages whose
    delivery failed, and suspend access for deposits whose balance is overdue past the grace period. Safe to run at once from several machines. With a queue, the run is sent to it as a job
    (unless --here or --dry-run)."""
    if not dry_run and not here and jobs.enqueue(this_app(), reminders_job):
        click.echo("Reminders run sent to the queue: a worker sends them.")
        return
    report = tasks.send_due_reminders(this_app(), dry_run=dry_run)
    if dry_run:
        for item in report.due:
            click.echo(f"request {item.request_id}: reminder {item.step:+d} day(s) from its due date")
        click.echo(f"{len(report.due)} reminder(s) due.")
        for purchase_id in report.overdue:
            click.echo(f"purchase {purchase_id}: balance overdue past the grace period, access to suspend")
        return
    click.echo(f"{report.sent} reminder(s) sent, {report.skipped} skipped (paid, cancelled or unreachable), "
               f"{report.claimed_elsewhere} sent by another run; {report.retried} failed message(s) retried; "
               f"{report.suspended} access(es) suspended for an overdue balance.")


def reminders_job(state: PluginState) -> None:
    """The reminders run as a queue's job: ``flask lms-stripe reminders run`` with a queue, or the
    ``lms_stripe_plugin.send_due_reminders`` task of a Celery app (for beat)."""
    tasks.send_due_reminders(this_app())


@lms_stripe_cli.command("worker")
@click.option("--burst", is_flag=True, help="Stop once the queue is empty.")
@click.option("--name", default=None, help="The worker's name in RQ (default: RQ's own).")
@click.option("--scheduler/--no-scheduler", default=True, show_default=True,
              help="Also put the jobs whose retry delay is over back in the queue (RQ keeps one scheduler "
                   "running at a time, however many workers ask).")
def worker(burst: bool, name: str | None, scheduler: bool) -> None:
    """Run the jobs of the plugin's RQ queue (LMS_STRIPE_RQ_REDIS_URL or the host's rq.Queue): webhook
    events, messages, follow-up work, reminders runs. One job at a time, in this process, with the app's
    database; start as many workers as the load needs, on any machine."""
    backend = queue.of(this_app())
    if not isinstance(backend, queue.RQBackend):
        raise click.UsageError("No RQ queue is configured: set LMS_STRIPE_RQ_REDIS_URL (with a Celery app, run "
                               "your Celery worker instead).")
    backend.worker(name=name).work(burst=burst, with_scheduler=scheduler)
