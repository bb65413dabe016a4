"""After ``os.fork()`` the child never uses a connection of the parent's (Celery prefork,
gunicorn --preload): one pooled socket shared by two processes would hand each the other's answers.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import os, sys, warnings
    warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads: that is the point
    import requests
    from kopechka.testing import Sandbox

    with Sandbox() as sb:
        session = requests.Session() if sys.argv[1] == "callers" else None
        client = sb.client(session=session)
        ids = [client.create_order("inbox.test", f"s{i}.com").order_id for i in range(8)]
        client.get_balance()  # the parent now has a pooled keep-alive connection
        pid = os.fork()
        mine = ids[:4] if pid == 0 else ids[4:]
        wrong = 0
        for _ in range(25):
            for order_id in mine:
                try:
                    wrong += client.get_order(order_id).order_id != order_id
                except Exception as exc:  # a crossed or broken answer
                    wrong += 1
        if pid == 0:
            os._exit(min(wrong, 100))
        _, status = os.waitpid(pid, 0)
        print(wrong, os.waitstatus_to_exitcode(status))
    """
)


@pytest.mark.parametrize("session", ["own", "callers"])
def test_parent_and_child_never_share_a_connection(session: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, session],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["0", "0"], (done.stdout, done.stderr[-2000:])


LOCK_SCRIPT = textwrap.dedent(
    """
    import os, threading, time, warnings
    warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads: that is the point
    from kopechka import _scrub

    held, release = threading.Event(), threading.Event()

    def hold() -> None:  # another thread is registering a key as the program forks
        with _scrub._LIVE_LOCK:
            held.set()
            release.wait(30)

    threading.Thread(target=hold, daemon=True).start()
    held.wait(30)
    pid = os.fork()
    if pid == 0:  # the child's first client registers its key
        _scrub.remember(_scrub.Secret("child-key-0123456789"))
        os._exit(0)
    release.set()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            print(os.waitstatus_to_exitcode(status))
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        print("stuck")
    """
)


def test_a_child_forked_while_a_key_is_registered_can_register_its_own() -> None:
    done = subprocess.run(
        [sys.executable, "-c", LOCK_SCRIPT], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["0"], (done.stdout, done.stderr[-2000:])
