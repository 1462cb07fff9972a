"""Email: the SMTP listener, the MIME normaliser and the outbound mail notifier."""
