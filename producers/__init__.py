"""What agency systems run: the event publisher, `publish` for exports, and the simulator."""
