"""The HTTP ingestion gateway: agency systems POST dossier events over HTTPS with a token."""
