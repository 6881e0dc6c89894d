"""Screens, one a module, each with its bindings and stylesheet beside it."""
