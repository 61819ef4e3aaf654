"""``airsync mirror``: what to carry, and the job that fetches, verifies and publishes it.

``inputs`` reads what the user asks for (go.sum, go.mod, module lists; pure but for reading
those files). ``job`` is the mirror job (trio): it fetches through ``fetch``, verifies every file
with ``goproxy``'s rules and ``trust``'s checksum database, publishes into the ``store`` and
records each file's signature for ``carry``. ``progress`` draws it live on a terminal.

It may import ``carry``, ``trust``, ``fetch``, ``store``, ``state``, ``goproxy`` and what
everything shares; the command line and the service both use it.
"""
