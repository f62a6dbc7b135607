"""reflex_tui."""
