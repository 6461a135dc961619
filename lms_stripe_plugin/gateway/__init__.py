"""The Stripe boundary: the only package that imports ``stripe``. One `StripeGateway` per app; every
request's parameters typed, Stripe's errors translated once into the plugin's."""
from .client import StripeGateway

__all__ = ["StripeGateway"]
