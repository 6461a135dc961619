"""Selling courses: offers and prices, the catalog, checkout, fulfilment, and the enrollment gate."""
