"""What keeps provider calls within bounds: circuit breakers (the runtime's, per provider and
model), rate limits, the retry policy."""
