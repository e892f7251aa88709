"""customer_sync."""
