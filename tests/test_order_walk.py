"""``OrderWalk``: which page ``iter_orders`` fetches next while the listing changes under it."""

from __future__ import annotations

from kopechka._policy import OrderWalk


def walk(listings: list[list[list[str]]], size: int = 2, limit: int = 50) -> tuple[list[str], int]:
    """Drive a walk over a listing that changes after each fetch: ``listings[n]`` is the whole
    listing (pages of ids) seen by fetch ``n`` (the last one stays). Return the ids yielded and the
    number of fetches."""
    out: list[str] = []
    state = OrderWalk(size)
    fetches = 0
    while state.page is not None and fetches < limit:
        listing = listings[min(fetches, len(listings) - 1)]
        flat = [i for page in listing for i in page]
        pages = max(1, -(-len(flat) // size))
        ids = flat[(state.page - 1) * size : state.page * size]
        fetches += 1
        out += [ids[p] for p in state.take(ids, len(flat), pages)]
    return out, fetches


def test_a_still_listing_is_walked_once() -> None:
    listing = [["a", "b"], ["c", "d"], ["e"]]
    assert walk([listing]) == (["a", "b", "c", "d", "e"], 3)


def test_an_empty_listing_costs_one_request() -> None:
    assert walk([[]]) == ([], 1)


def test_orders_moving_up_as_the_caller_cancels_are_all_yielded() -> None:
    # the caller cancels each page it was given; with a status filter, the rest moves up
    listings = [
        [["a", "b"], ["c", "d"], ["e"]],  # a, b yielded, then cancelled
        [["c", "d"], ["e"]],  # page 2 is now e, yielded, then cancelled
        [["c", "d"]],  # a second pass finds c and d
        [],
    ]
    out, fetches = walk(listings)
    assert sorted(out) == ["a", "b", "c", "d", "e"]
    assert fetches == 3


def test_orders_moving_down_as_new_ones_arrive_are_yielded_once() -> None:
    listings = [
        [["a", "b"], ["c", "d"]],
        [["n1", "n2"], ["n3", "a"], ["b", "c"], ["d"]],
    ]
    out, _ = walk(listings)
    assert len(out) == len(set(out))
    assert {"a", "b", "c", "d"} <= set(out)


def test_a_server_repeating_one_page_forever_costs_three_requests() -> None:
    out, fetches = walk([[["a", "b"]] * 10**6])  # pages = 10**6, every page the same
    assert out == ["a", "b"]
    assert fetches == 3


def test_new_orders_that_push_whole_pages_down_do_not_end_the_pass() -> None:
    listings = [
        [["a", "b"], ["c", "d"], ["e", "f"]],
        [["n1", "n2"], ["n3", "n4"], ["a", "b"], ["c", "d"], ["e", "f"]],
    ]
    out, _ = walk(listings)
    assert len(out) == len(set(out))
    assert {"a", "b", "c", "d", "e", "f"} <= set(out)


def test_a_server_claiming_endless_growth_is_still_bounded() -> None:
    listings = [[["a", "b"]] * (n + 2) for n in range(0, 10**4, 7)]  # grows, never new
    _, fetches = walk(listings, limit=10**4)
    assert fetches < 2 * OrderWalk.MAX_STALE_PAGES + 10
