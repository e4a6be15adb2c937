"""The load generator's latency figures, which the swap benchmarks and tests read."""

from __future__ import annotations

from golive.sandbox.load import LoadResult, Sample


def _result(latencies: list[float], phase: str = "swap") -> LoadResult:
    return LoadResult([Sample(float(i), v, 200, "blue", phase) for i, v in enumerate(latencies)], retries=0)


def test_p99_never_exceeds_the_slowest_request_in_a_small_phase() -> None:
    result = _result([0.001] * 22 + [0.0041])  # 23 requests: a short phase, as a configtest is
    assert result.latency("swap", 0.99) <= 0.0041
    assert result.latency("swap", 1.0) == 0.0041


def test_percentiles_of_a_large_phase_and_of_another_phase() -> None:
    result = _result([i / 1000 for i in range(1, 1001)])  # 1..1000 ms
    assert abs(result.latency("swap", 0.99) - 0.990) < 0.0015
    assert abs(result.latency("swap", 0.5) - 0.5005) < 0.0015
    assert result.latency("steady", 0.99) == 0.0  # no request in that phase
