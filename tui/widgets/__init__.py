"""Widgets the screens compose."""
