"""The GOPROXY protocol and Go's own formats, as the go command reads them.

Module paths and versions (``modpath``, ``semver``), go.sum and go.mod files (``gosum``,
``gomod``), the ``h1:`` hash (``dirhash``), the module zip rules (``modzip``), GOPROXY lists
(``upstream``) and what a plan of module versions needs (``wants``).

All pure: values and bytes in, values out; no event loop, sockets or logging (``dirhash`` and
``modzip`` read the zip file they are given, nothing else touches a file). It may import only
``airsync.errors``; every other capability builds on it.
"""
