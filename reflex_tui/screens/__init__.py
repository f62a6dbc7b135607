"""Screens of the Reflex dashboard."""
