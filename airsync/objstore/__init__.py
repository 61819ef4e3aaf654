"""The mirror in an S3-compatible object store (``s3://BUCKET/PREFIX``).

``url``: the store URL and its settings (pure); ``client``: the S3 client (obstore's sync API,
called from worker threads); ``mirror``: ``ObjectMirrorStore``, the object-store twin of
``store.MirrorStore`` with the same publishing guarantees; ``open_store`` picks one by target.
"""
