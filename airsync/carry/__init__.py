"""Carrying a mirror across the gap: to a medium, a peer, or a served directory, signed.

Pure: ``chunks`` (content-defined chunk signatures and delta plans) and ``manifest`` (the signed
manifest of a medium and the diff of two; it also reads and writes key files).
I/O: ``medium`` (what a medium holds, hashed from disk), ``signatures`` (each mirror file's
signature, kept in a cache), ``sync`` (copying the mirror to a directory, durably), ``verify``
(checking a medium and importing it inside), ``serve`` (a mirror over HTTP) and ``pull`` (a
peer's mirror fetched by delta).

It may import ``trust`` (signed notes, the checksum database's layout), ``fetch``, ``store``,
``state``, ``goproxy`` and what everything shares; never ``mirror`` or ``service``.
"""
