"""Optional extras of kopechka, each behind its own install extra.

* ``kopechka.contrib.redis`` (``pip install "kopechka[redis]"``): ``RedisLimiter``, one rate limit
  and one shared cooldown for every process and machine that uses the same API key.
* ``kopechka.contrib.otel`` (``pip install "kopechka[otel]"``): ``instrument(client)``, one
  OpenTelemetry span per API call, built on the client's event hooks.

Importing ``kopechka.contrib`` loads neither.
"""
