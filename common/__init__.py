"""Shared below the adapters and the command line: settings, errors, console, Kafka admin."""
