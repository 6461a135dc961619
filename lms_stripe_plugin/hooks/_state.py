from __future__ import annotations

from flask import current_app, has_app_context


def plugin_state(sender):
    """The plugin state of the app that sent the signal, or None if that app has no plugin."""
    extensions = getattr(sender, "extensions", None)
    if extensions is None and has_app_context():
        extensions = current_app.extensions
    return (extensions or {}).get("lms_stripe")
