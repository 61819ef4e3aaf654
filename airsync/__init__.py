"""airsync: verified, resumable Go module mirrors for air-gapped networks."""

__version__ = "0.1.0"
