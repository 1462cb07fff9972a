"""SMS and WhatsApp through Twilio: the webhook, its signature, the normaliser, media,
the notifier, opt-outs and delivery statuses."""
