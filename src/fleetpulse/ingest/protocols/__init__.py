"""Device protocols: one sub-package per protocol, found by registration.

A protocol package contains small modules for framing, decoding and answers, plus a
listener class registered with ``@register``. Decoders turn bytes into records and
never touch the queue or the store: the listener hands decoded records to
``IngestService.ingest_records``, which validates, publishes and dead-letters them
exactly as it does for ``POST /v1/telemetry``.
"""
