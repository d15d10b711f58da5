"""The stream worker: Faust agents that turn dossier events into the figures Redis serves."""
