"""Fetching files from an upstream GOPROXY: resumable, ranged, retried, rate-limited.

Pure: ``rangeplan`` (which byte ranges to ask for, and whether an answer may be spliced in),
``retry`` (which answers to retry, and how long to wait), ``ratelimit`` (a token bucket),
``concurrency`` (how many requests a host gets, grown while latency is the limit).
I/O: ``slots`` (request slots per host, each with a keep-alive connection), ``h11client`` (the
HTTP/1.1 client of those slots, on h11) and ``fetcher`` (one file into memory or a partial file,
its progress recorded for resume), on trio, with httpx for HTTP/2 and proxies.

It may import ``goproxy`` (upstream lists), ``store`` and ``state`` (where partial files and
resume records live), and what everything shares; nothing above.
"""
