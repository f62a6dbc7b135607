"""reflex-hub: local PubNub-compatible development, demo and test backend (in progress)."""
