"""Rendering for people and machines: event reporters and result tables.

Workflows emit :class:`taltasks.events.Event`; a reporter renders them. Read-only commands
return rows; :func:`taltasks.ui.tables.print_rows` shows them as a rich table on a terminal,
aligned plain text otherwise, or JSON with ``--json``. rich is imported only when a
terminal is actually drawn on.
"""
