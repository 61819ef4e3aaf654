"""The service (``airsync run``): a daemon under systemd that keeps the mirror fresh and fills media.

Pure: ``jobs`` (job records, their states and the queue that decides what runs), ``inbox``
(when a dropped request file has settled), ``statusview`` (status drawn as a table for people).
I/O: ``daemon`` composes the parts: ``ledger`` (the jobs, kept in ``jobdb``), ``runner`` (the
supervisor) and ``work`` (what a job does), ``intake`` (request files), ``media`` (which media
may be written, by their ``marker``), ``lifecycle`` (signals, the watchdog through ``sdnotify``),
``control`` (the HTTP+JSON API on a unix socket) and ``views`` (what that API shows).
``commands`` are the subcommands that run the service or talk to it, through ``controlclient``.

It may import every capability below it (``mirror``, ``config``, ``carry``, ...); only the
command line imports it.
"""
