"""The Go checksum database: checking what it says, and carrying it across the gap.

Pure: ``tlog`` (the transparency log: tree hashes, tiles, inclusion and consistency proofs),
``note`` (signed notes and their ed25519 verifiers), ``sumdb`` (GOSUMDB settings, private path
patterns, lookup records and the paths the go command asks for).
I/O: ``checksums`` fetches lookups and tiles through ``fetch``, proves every record, and stores
them in the mirror where the go command will read them.

It may import ``fetch``, ``store``, ``state``, ``goproxy`` and what everything shares.
"""
