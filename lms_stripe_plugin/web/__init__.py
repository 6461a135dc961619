"""What the plugin's pages and the fragments it gives the host share: rendering with the plugin's
translations and helpers, and the forms (marshmallow schemas) that read what people type."""
