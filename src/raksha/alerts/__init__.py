"""Alert delivery: persist first (outbox), then deliver through each configured channel."""
