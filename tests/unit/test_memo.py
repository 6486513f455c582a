"""`short_cache`: caches what peers repeat, never what would let them fill memory."""

from __future__ import annotations

from ingressd.memo import short_cache


def test_short_values_are_cached_and_long_ones_computed_each_time() -> None:
    calls: list[bytes] = []

    @short_cache(max_length=4, maxsize=8)
    def length(value: bytes) -> int:
        calls.append(value)
        return len(value)

    assert [length(b"ab"), length(b"ab"), length(b"abcd")] == [2, 2, 4]
    assert calls == [b"ab", b"abcd"]  # the repeat came from the cache
    assert [length(b"abcde"), length(b"abcde")] == [5, 5]
    assert calls[2:] == [b"abcde", b"abcde"]  # too long: computed twice, never stored
    assert length.cache_info().currsize == 2
