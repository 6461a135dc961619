"""Billing: our records of Stripe's invoices and the lists and exports built on them."""
