"""Pure domain core: working-day calendar and deadline arithmetic, no I/O."""
