"""Dialogs of the Reflex dashboard."""
