"""What keeps provider calls within bounds: circuit breakers, rate limits, the retry policy."""
