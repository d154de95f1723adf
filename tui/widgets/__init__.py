"""Widgets of the app: lists, detail tabs, the logs pane."""
