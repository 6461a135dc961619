"""Bringing our tables in line with Stripe: webhook intake and dispatch, and reconciliation. These are
edges: each event handled, and each reconciliation repair, is a unit of work they commit."""
