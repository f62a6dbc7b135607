"""Widgets of the Reflex dashboard."""
