"""DynamoDB Streams: change records of tables with a stream, delivered to subscribed functions.

:mod:`.records` builds the record of one write, :mod:`.log` keeps records and each
subscription's position in the tables' SQLite file (written in the same transaction as the item),
:mod:`.mappings` polls the log and invokes the functions (the event source mappings), :mod:`.api`
serves the DynamoDB Streams API over the same log.
"""

from .mappings import StreamMapping, Streams

__all__ = ["StreamMapping", "Streams"]
