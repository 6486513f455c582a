"""metrics.py: the fixed-bucket histogram, the label classes, and `Stats` bookkeeping."""

from __future__ import annotations

import pytest

from ingressd.metrics import BUCKETS, Histogram, Stats, method_class, status_class


def bucket_counts(histogram: Histogram) -> dict[str, float]:
    return dict(histogram.cumulative())


def test_empty_histogram_has_every_bucket_at_zero() -> None:
    cumulative = Histogram().cumulative()
    assert [bound for bound, _ in cumulative] == [*map(str, BUCKETS), "+Inf"]
    assert all(count == 0 for _, count in cumulative)


def test_histogram_buckets_are_cumulative() -> None:
    histogram = Histogram()
    for value in (0.001, 0.02, 0.02, 0.3, 7.0):
        histogram.observe(value)
    counts = bucket_counts(histogram)
    assert counts["0.005"] == 1
    assert counts["0.01"] == 1
    assert counts["0.025"] == 3
    assert counts["0.25"] == 3
    assert counts["0.5"] == 4
    assert counts["5.0"] == 4
    assert counts["10.0"] == 5
    assert counts["+Inf"] == 5
    values = [count for _, count in histogram.cumulative()]
    assert values == sorted(values), "cumulative counts never decrease"
    assert histogram.total == pytest.approx(0.001 + 0.02 + 0.02 + 0.3 + 7.0)


def test_value_on_a_bound_is_counted_in_that_bucket() -> None:
    """Prometheus buckets are ``le``: less than *or equal to* the bound."""
    histogram = Histogram()
    histogram.observe(0.1)
    counts = bucket_counts(histogram)
    assert counts["0.05"] == 0
    assert counts["0.1"] == 1


def test_value_above_the_last_bound_is_only_in_inf() -> None:
    histogram = Histogram()
    histogram.observe(3600.0)
    counts = bucket_counts(histogram)
    assert counts[str(BUCKETS[-1])] == 0
    assert counts["+Inf"] == 1


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (100, "1xx"),
        (101, "1xx"),
        (199, "1xx"),
        (200, "2xx"),
        (204, "2xx"),
        (299, "2xx"),
        (301, "3xx"),
        (308, "3xx"),
        (400, "4xx"),
        (404, "4xx"),
        (499, "4xx"),
        (500, "5xx"),
        (502, "5xx"),
        (599, "5xx"),
        (0, "other"),
        (99, "other"),
        (600, "other"),
        (999, "other"),
    ],
)
def test_status_class(status: int, expected: str) -> None:
    assert status_class(status) == expected


@pytest.mark.parametrize(
    "method", [b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS"]
)
def test_known_methods_keep_their_name(method: bytes) -> None:
    assert method_class(method) == method.decode()


@pytest.mark.parametrize("method", [b"PROPFIND", b"get", b"TRACE", b"X" * 100, b"G\xc3\xa9T"])
def test_other_methods_share_one_label(method: bytes) -> None:
    """A client cannot grow the label set: anything unusual is ``other``."""
    assert method_class(method) == "other"


def test_count_request_by_route_method_and_status_class() -> None:
    stats = Stats()
    route = ("shop", "web", "frontend")
    stats.count_request(route, "GET", 200, 0.002, 0.001, 0, 150)
    stats.count_request(route, "GET", 204, 0.03, 0.02, 0, 90)
    stats.count_request(route, "POST", 503, 0.4, None, 1000, 120)
    stats.count_request(("", "", ""), "GET", 404, 0.0001, None, 0, 170)

    assert stats.requests == {
        (route, "GET", "2xx"): 2,
        (route, "POST", "5xx"): 1,
        (("", "", ""), "GET", "4xx"): 1,
    }
    service = ("shop", "frontend")
    assert stats.request_seconds[service].cumulative()[-1] == ("+Inf", 3.0)
    assert stats.request_seconds[service].total == pytest.approx(0.432)
    # No upstream time (ingressd answered itself): nothing observed upstream.
    assert stats.upstream_seconds[service].cumulative()[-1] == ("+Inf", 2.0)
    assert ("", "") not in stats.upstream_seconds
    assert stats.request_seconds[("", "")].cumulative()[-1] == ("+Inf", 1.0)
    assert stats.bytes_in == {service: 1000, ("", ""): 0}
    assert stats.bytes_out == {service: 360, ("", ""): 170}


def test_bump_counts_per_key() -> None:
    stats = Stats()
    for endpoint in ("10.0.0.1:80", "10.0.0.1:80", "10.0.0.2:80"):
        stats.bump(stats.connect_errors, endpoint)
    assert stats.connect_errors == {"10.0.0.1:80": 2, "10.0.0.2:80": 1}
    assert stats.retries == {}
