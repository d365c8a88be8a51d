"""The `stackyard` command line: `up` starts a node; the others talk to it over its control API."""
