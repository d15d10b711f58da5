"""The contract: event models, code lists, the agency registry and the Redis read models."""
