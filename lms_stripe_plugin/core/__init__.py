"""The shared kernel: models, statuses, transactions, the audit log, secrets at rest, translations and
the state the plugin keeps per app. Every other package builds on it; it builds on nothing of theirs."""
