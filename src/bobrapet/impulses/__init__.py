"""bobrapet.impulses: the built-in impulse runtimes (webhook, github, cron, nats, redis-stream,
amqp) and the supervisor that runs an Impulse while ``serve`` runs."""
