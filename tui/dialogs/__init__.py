"""Modal dialogs that dismiss() a value."""
