"""Orders and order items."""
