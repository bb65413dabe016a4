"""In this example, we: run sign-ups as Celery tasks on many worker processes that share one API
key: one client per process, one rate limit for them all in Redis, one mailbox block per task.

    cd examples/celery_farm
    celery -A tasks worker --pool prefork --concurrency 8     # on each machine of the farm

Configuration comes from the environment: ``KOPECHKA_API_KEY`` (and ``KOPECHKA_BASE_URL``) for the
client, ``FARM_REDIS_URL`` (the broker, the results and the shared limiter; default
``redis://localhost:6379/0``), ``FARM_QUEUE`` (default ``farm``) and, if you know your key's limit,
``FARM_RATE_LIMIT`` in requests per second (without it the farm learns the limit from the server's
429s). Submit work with ``submit.py``.
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import Any

import redis
from celery import Celery
from celery.signals import worker_process_shutdown

from kopechka import KopechkaClient
from kopechka.contrib.redis import RedisLimiter

REDIS_URL = os.environ.get("FARM_REDIS_URL", "redis://localhost:6379/0")
QUEUE = os.environ.get("FARM_QUEUE", "farm")

app = Celery("farm", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(
    task_default_queue=QUEUE,
    task_acks_late=False,  # at most once: a sign-up that may have bought an order never reruns
    worker_prefetch_multiplier=1,  # long tasks: an idle process takes the next one
    result_expires=3600,
    broker_connection_retry_on_startup=True,
)


class SignUpRefusedError(Exception):
    """The site refused the address: the sign-up failed after the order was bought."""


# --- one client per worker process --------------------------------------------------------------

_clients: dict[int, KopechkaClient] = {}  # by process id: a forked child never uses its parent's
_clients_lock = threading.Lock()


def farm_client() -> KopechkaClient:
    """This process's client, built on first use: in each worker process, after the fork.

    Every client uses the same ``RedisLimiter``, named after the key, so all processes on all
    machines share one pace and one cooldown. Built lazily, no client exists in Celery's main
    process nor in a program that only submits tasks (which then needs no API key).
    """
    with _clients_lock:
        client = _clients.get(os.getpid())
        if client is None:
            key = os.environ["KOPECHKA_API_KEY"]
            rate = os.environ.get("FARM_RATE_LIMIT")
            store = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
            limiter = RedisLimiter(
                store,
                name="key-" + hashlib.sha256(key.encode()).hexdigest()[:16],  # one limit per key
                rate=float(rate) if rate else None,
            )
            client = _clients[os.getpid()] = KopechkaClient(key, rate_limit=limiter)
        return client


@worker_process_shutdown.connect
def _close_client(**_: Any) -> None:
    client = _clients.pop(os.getpid(), None)
    if client is not None:
        client.close()


# --- the work -----------------------------------------------------------------------------------


def register(site: str, email: str) -> None:
    """Your sign-up on ``site`` with ``email``: fill in its form, in a browser or over HTTP.

    This stand-in sends nothing: against ``kopechka sandbox --auto-mail 1`` the sandbox plays the
    site and mails a code to every new order. A site under ``.invalid`` refuses the address, to
    show that a failed sign-up gets its order refunded.
    """
    if site.endswith(".invalid"):
        raise SignUpRefusedError(f"{site} refused the address")


@app.task(name="farm.sign_up")
def sign_up(
    site: str, domain: str = "example.com", timeout: float = 120.0, poll_interval: float = 2.0
) -> dict[str, str]:
    """Buy an address, sign up on ``site`` with it and return the verification code.

    Leaving the ``with`` block cancels the order if no mail came (the sign-up raised, or the wait
    timed out), so its price is refunded; the task then fails with that exception.
    """
    with farm_client().mailbox(domain, site) as box:
        register(site, box.email)
        code = box.wait_for_code(timeout=timeout, poll_interval=poll_interval)
        return {"site": site, "email": box.email, "order_id": box.order_id, "code": code}
