"""The API actor: the only writer of the datastore, serving every verb over NATS request/reply."""
