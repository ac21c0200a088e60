"""What every actor and agent shares: NATS connection, supervision, logging, the API client, informers."""
