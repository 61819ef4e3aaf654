"""airsync: verified, resumable Go module mirrors for air-gapped networks.

One subpackage per capability, each importing only those listed below it (an import-linter
contract in pyproject.toml keeps it so; ``lint-imports`` checks it):

- ``service``: the long-running daemon, its control API and its commands (``airsync run``, status);
- ``mirror``: what to mirror (inputs) and the job that fetches, verifies and publishes it;
  ``config``: the TOML config and the settings it gives a job;
- ``carry``: chunk signatures, manifests, media, sync/verify/import, serve and pull;
- ``trust``: the checksum database: its log, signed notes, settings, and carrying it;
- ``fetch``: resumable HTTP Range downloads: planning, retries, rate limits, connections;
- ``store`` and ``state``: the mirror on disk and its state database, which every part shares;
- ``goproxy``: the GOPROXY protocol and Go's own formats (module paths, semver, go.sum, go.mod,
  the h1 hash, zip rules), all pure;
- ``errors``, ``log``, ``units``: what everything shares.

``cli`` is the command line over all of them; ``sample`` builds synthetic modules, a GOPROXY tree
and a checksum database for the demo, the tests and the benchmarks (``python -m airsync.sample``).
"""

__version__ = "0.1.0"
