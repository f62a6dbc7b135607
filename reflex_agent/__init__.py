"""reflex_agent."""
