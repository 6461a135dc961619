"""The school's account with Stripe: the payment settings (keys, methods, defaults)."""
