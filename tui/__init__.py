"""The Textual review app: the only package that imports Textual."""
