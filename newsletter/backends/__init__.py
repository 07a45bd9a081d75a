"""Delivery backends: plugins that hand finished messages to a transport."""
