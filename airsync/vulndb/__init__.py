"""The Go vulnerability database, carried: mirrored from its static files, checked, audited against.

Pure: ``db`` (the index files and OSV entries, their checks, update plans, rollback), ``affects``
(which module versions an entry's ranges cover, as govulncheck decides it) and ``audit`` (module
versions against a database). I/O: ``ondisk`` (a database in a directory: read, check, publish
into a mirror) and ``update`` (fetch one from its URL into a mirror).
"""
