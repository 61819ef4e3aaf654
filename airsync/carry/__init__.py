"""Carrying a mirror across the gap: to a medium, a peer, or a served directory, signed.

Pure: ``chunks`` (content-defined chunk signatures and delta plans), ``manifest`` (the signed
manifest of a medium or bundle and the diff of two; it also reads and writes key files),
``bundle`` (a bundle's tar parts planned), ``rollback`` (which manifests anti-rollback accepts),
``sbom`` (the CycloneDX SBOM of what crosses) and ``syncstamp`` (a resync's quick check).
I/O: ``medium`` (what a medium holds, hashed from disk), ``signatures`` (each mirror file's
signature, kept in a cache), ``sequence`` (the signer's manifest counter), ``accepted`` (the
inside's record of accepted manifests), ``sync`` (copying the mirror to a directory, durably),
``verify`` (checking a medium and importing it inside), ``bundlewrite`` and ``bundleread``
(writing a bundle; checking and importing one), ``serve`` (a mirror over HTTP) and ``pull`` (a
peer's mirror fetched by delta).

It may import ``trust`` (signed notes, the checksum database's layout), ``fetch``, ``store``,
``state``, ``goproxy`` and what everything shares; never ``mirror`` or ``service``.
"""
