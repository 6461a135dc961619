"""Money going back: cancellation by credit note, refunds and their lifecycle at Stripe, disputes, and the
learner's access that follows them."""
