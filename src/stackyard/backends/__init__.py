"""Adapters shared by the components (see DESIGN.md).

- :mod:`.sqlite`: :class:`~.sqlite.SqliteThread`, one SQLite connection owned by one worker
  thread, for the components that keep their state in a SQLite file (the functions' event
  store, the bucket index, the API key store).
"""
