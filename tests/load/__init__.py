"""Load and concurrency tests: the demo LMS under gunicorn on PostgreSQL, the Stripe sandbox on loopback."""
