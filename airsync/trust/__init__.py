"""The Go checksum database: checking what it says, and carrying it across the gap.

Pure: ``tlog`` (the transparency log: tree hashes, tiles, inclusion and consistency proofs),
``note`` (signed notes and their ed25519 verifiers), ``sumdb`` (GOSUMDB settings, private path
patterns, lookup records and the paths the go command asks for), ``carried`` (what a carried
database must hold for the go command, which checks lookups read at many heads, and those checks).
I/O: ``checksums`` fetches lookups and tiles through ``fetch``, proves every record, and stores
them in the mirror where the go command will read them, every answer at the newest head;
``ondisk`` runs ``carried``'s checks over a database in a mirror or on a medium; ``heads`` reads
the heads a machine ($GOPATH/pkg/sumdb) or a mirror knows, for ``airsync sumdb-heads`` and
``airsync mirror --prove-heads``.

It may import ``fetch``, ``store``, ``state``, ``goproxy`` and what everything shares.
"""
