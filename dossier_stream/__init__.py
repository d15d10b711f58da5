"""dossier-stream: live figures for administrative-procedure dossiers."""

__version__ = "0.1.0"
