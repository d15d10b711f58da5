"""The monitoring dashboard: a web page and a JSON API that read the worker's figures from Redis."""
