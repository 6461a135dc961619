"""Keys of the offline sandbox (test mode). Real Stripe keys switch the sandbox off."""

SANDBOX_KEYS = {
    "publishable_key": "pk_test_sandbox_demo",
    "secret_key": "sk_test_sandbox_demo",
    "webhook_secret": "whsec_sandbox_demo",
}
