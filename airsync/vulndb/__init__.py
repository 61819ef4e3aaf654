"""The Go vulnerability database, carried: mirrored from its static files, checked, audited against.

Pure: ``db`` (the index files and OSV entries, their checks, update plans, rollback) and ``affects``
(which module versions an entry's ranges cover, as govulncheck decides it). I/O: ``ondisk`` (a
database in a directory: read, check, publish), ``update`` (fetch one from a URL into a mirror),
``audit`` (the module versions of a go.sum, a go.mod or a mirror against a database).
"""
