"""Buckets: an S3-compatible object store on the node's disk (see :mod:`.service`, :mod:`.api`)."""

from .service import Buckets

__all__ = ["Buckets"]
