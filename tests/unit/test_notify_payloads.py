"""Run events riding in NOTIFY payloads (runs/pgbus.py): under the limit, in order, big ones by reference."""

from __future__ import annotations

import orjson

from assistd.runs.pgbus import NOTIFY_LIMIT, notify_payloads, parse_payload, payload_runs


def test_events_round_trip_in_order_and_split_under_the_limit() -> None:
    batch = [
        (f"run_{i % 3}", "thread.message.delta", orjson.dumps({"i": i, "v": "x" * 300}), 1_700_000_000.0 + i / 100)
        for i in range(100)
    ]
    payloads = notify_payloads(list(range(1000, 1100)), batch)
    assert len(payloads) > 1 and all(len(p.encode()) < NOTIFY_LIMIT for p in payloads)
    seen: dict[str, list[tuple[int, str, bytes | None, float]]] = {}
    for p in payloads:
        parsed = parse_payload(p)
        assert sorted(payload_runs(p)) == sorted(run_id for run_id, _ in parsed)
        for run_id, events in parsed:
            seen.setdefault(run_id, []).extend(events)
    for r in range(3):
        got = seen[f"run_{r}"]
        assert [seq for seq, _, _, _ in got] == [1000 + i for i in range(100) if i % 3 == r]
        assert all(data is not None and orjson.loads(data)["i"] == seq - 1000 for seq, _, data, _ in got)
        # when each event was published travels with it (the relay-lag metric), to 0.1 ms
        assert all(abs(at - (1_700_000_000.0 + (seq - 1000) / 100)) < 1e-4 for seq, _, _, at in got)


def test_an_event_too_big_is_announced_without_its_data() -> None:
    batch = [
        ("run_a", "thread.message.delta", orjson.dumps({"v": "small"}), 1.5),
        ("run_a", "thread.message.completed", orjson.dumps({"v": "é" * 5000}), 2.5),  # 10 KB of UTF-8
        ("run_a", "thread.run.completed", orjson.dumps({"status": "completed"}), 3.5),
    ]
    (payload,) = notify_payloads([7, 8, 9], batch)
    [(run_id, events)] = parse_payload(payload)
    assert run_id == "run_a" and [(s, e) for s, e, _, _ in events] == [
        (7, "thread.message.delta"),
        (8, "thread.message.completed"),
        (9, "thread.run.completed"),
    ]
    assert events[1][2] is None and orjson.loads(events[2][2]) == {"status": "completed"}
