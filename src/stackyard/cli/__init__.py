"""The ``stackyard`` command line: ``up`` starts a node; the rest talk to one over its control API."""
