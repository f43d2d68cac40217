"""Unit tests of lift_client without a server: requests are recorded by a fake
session and answered with canned responses."""

import json
import os
import sys
import unittest
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from lift_client import APIError, Client, batches, comparison_rows  # noqa: E402


class FakeResponse:
    def __init__(self, status, body=None, content=None):
        self.status_code = status
        if content is None:
            content = b"" if body is None else json.dumps(body).encode()
        self.content = content
        self.text = content.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.content)


class Recorder:
    """Stands in for requests.Session: records each call, answers in order."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = []

    def request(self, method, url, **kw):
        self.calls.append((method, url, kw))
        return self.answers.pop(0)


class TestRequests(unittest.TestCase):
    def test_paths_auth_and_body(self):
        cases = [
            ("results", lambda c: c.results("checkout button"), "GET", "/v1/experiments/checkout%20button/results", None),
            ("daily", lambda c: c.daily("exp/1", "revenue"), "GET", "/v1/experiments/exp%2F1/results/daily", None),
            ("privacy", lambda c: c.set_privacy("e", 2, 0.5), "PUT", "/v1/experiments/e/privacy",
             {"epsilon": 2, "delta": 0.0, "release_epsilon": 0.5}),
            ("start", lambda c: c.start_experiment("e"), "POST", "/v1/experiments/e/start", {}),
            ("backfill", lambda c: c.start_experiment("e", started_at="2026-02-01T00:00:00Z"), "POST", "/v1/experiments/e/start",
             {"started_at": "2026-02-01T00:00:00Z"}),
            ("backfill from a datetime", lambda c: c.start_experiment("e", started_at=datetime(2026, 2, 1, 1, tzinfo=timezone(timedelta(hours=1)))),
             "POST", "/v1/experiments/e/start", {"started_at": "2026-02-01T00:00:00Z"}),
            ("did", lambda c: c.did({"metric": "m"}), "POST", "/v1/analyses/did", {"metric": "m"}),
        ]
        for name, call, method, path, body in cases:
            with self.subTest(name):
                rec = Recorder(FakeResponse(200, {"ok": True}))
                c = Client("http://127.0.0.1:9/", "lift_secret", session=rec)
                self.assertEqual(call(c), {"ok": True})
                m, url, kw = rec.calls[0]
                self.assertEqual(m, method)
                self.assertEqual(url, "http://127.0.0.1:9" + path)
                self.assertEqual(kw["headers"]["Authorization"], "Bearer lift_secret")
                if body is None:
                    self.assertNotIn("data", kw)
                else:
                    self.assertEqual(json.loads(kw["data"]), body)
                    self.assertEqual(kw["headers"]["Content-Type"], "application/json")

    def test_daily_sends_metric(self):
        rec = Recorder(FakeResponse(200, {}))
        Client("http://h", "k", session=rec).daily("e", "revenue")
        self.assertEqual(rec.calls[0][2]["params"], {"metric": "revenue"})

    def test_error_answer_raises(self):
        cases = [
            ("api error", FakeResponse(409, {"error": {"code": "budget_exhausted", "message": "privacy budget exhausted", "request_id": "r-1"}}),
             409, "budget_exhausted", "privacy budget exhausted", "r-1"),
            ("not json", FakeResponse(502, content=b"<html>bad gateway</html>"), 502, "", "<html>bad gateway</html>", None),
        ]
        for name, resp, status, code, message, rid in cases:
            with self.subTest(name):
                c = Client("http://h", "k", session=Recorder(resp))
                with self.assertRaises(APIError) as cm:
                    c.private_results("e")
                e = cm.exception
                self.assertEqual((e.status, e.code, e.message, e.request_id), (status, code, message, rid))

    def test_raw_answers_bytes(self):
        png = b"\x89PNG\r\n\x1a\n..."
        c = Client("http://h", "k", session=Recorder(FakeResponse(200, content=png)))
        self.assertEqual(c.plot("e", "forest"), png)

    def test_log_exposures_batches(self):
        xs = [{"experiment": "e", "unit": f"u{i}", "variant": "control"} for i in range(25)]
        rec = Recorder(*(FakeResponse(200, {"accepted": n}) for n in (10, 10, 5)))
        self.assertEqual(Client("http://h", "k", session=rec).log_exposures(xs, batch=10), 25)
        self.assertEqual([len(json.loads(kw["data"])["exposures"]) for _, _, kw in rec.calls], [10, 10, 5])

    def test_send_events_counts_duplicates(self):
        evs = [{"event_id": str(i)} for i in range(3)]
        rec = Recorder(FakeResponse(200, {"accepted": 1, "duplicates": 1}), FakeResponse(200, {"accepted": 1, "duplicates": 0}))
        self.assertEqual(Client("http://h", "k", session=rec).send_events(evs, batch=2), (2, 1))

    def test_from_env(self):
        old = dict(os.environ)
        try:
            os.environ.pop("LIFT_URL", None)
            os.environ.pop("LIFT_KEY", None)
            with self.assertRaises(RuntimeError):
                Client.from_env()
            os.environ.update(LIFT_URL="http://x:1", LIFT_KEY="k")
            c = Client.from_env()
            self.assertEqual((c.url, c.key), ("http://x:1", "k"))
        finally:
            os.environ.clear()
            os.environ.update(old)


class TestHelpers(unittest.TestCase):
    def test_batches(self):
        cases = [(0, 3, []), (5, 2, [2, 2, 1]), (4, 4, [4])]
        for n, size, want in cases:
            with self.subTest(n=n, size=size):
                self.assertEqual([len(b) for b in batches(list(range(n)), size)], want)
        with self.assertRaises(ValueError):
            list(batches([1], 0))

    def test_comparison_rows(self):
        eff = {"estimate": 0.05, "ci_low": 0.01, "ci_high": 0.09, "p_value": 0.02}
        r = {"metrics": [
            {"name": "revenue", "primary": True, "comparisons": [{
                "variant": "treatment", "relative": eff, "absolute": dict(eff, estimate=1.0),
                "cuped": {"variance_reduction": 0.2}, "adjusted_p_value": {"relative": 0.04}}]},
            {"name": "broken", "error": "no data"},
        ]}
        rows = comparison_rows(r)
        self.assertEqual(len(rows), 2)
        self.assertEqual(rows[0]["p_value"], 0.04)
        self.assertEqual(rows[0]["absolute"], 1.0)
        self.assertEqual(rows[0]["cuped_variance_reduction"], 0.2)
        self.assertEqual(rows[1], {"metric": "broken", "error": "no data"})
        self.assertEqual(comparison_rows(r, adjusted=False)[0]["p_value"], 0.02)


if __name__ == "__main__":
    unittest.main()
