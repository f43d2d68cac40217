"""lift_client against a real ``lift serve`` on loopback, over a fresh DuckDB
file. The binary is LIFT_BIN (notebooks/run.sh builds it and sets it); without
it these tests skip, saying so."""

import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import unittest
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from lift_client import APIError, Client  # noqa: E402

ADMIN_KEY = "lift_client_test_admin_key_0001"


class Server:
    """``lift serve --addr 127.0.0.1:0`` over a temporary file, stopped by PID."""

    def __init__(self, binary):
        self.dir = tempfile.TemporaryDirectory(prefix="lift-client-test-")
        env = dict(os.environ, LIFT_ADMIN_KEY=ADMIN_KEY)
        self.log = open(os.path.join(self.dir.name, "serve.log"), "w+")
        self.proc = subprocess.Popen(
            [binary, "serve", "--db", os.path.join(self.dir.name, "lift.duckdb"), "--addr", "127.0.0.1:0", "--log-level", "warn"],
            stdout=subprocess.PIPE, stderr=self.log, env=env, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"serving on (http://\S+)", line)
        if not m:
            self.stop()
            raise RuntimeError(f"lift serve did not start: {line!r}")
        self.url = m.group(1)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.log.close()
        self.dir.cleanup()


def welch(a, b):
    """Welch's difference in means b − a: (estimate, se, dof), from the textbook
    formulas (independent of Lift's code)."""
    def mv(x):
        m = sum(x) / len(x)
        return m, sum((v - m) ** 2 for v in x) / (len(x) - 1)
    ma, va = mv(a)
    mb, vb = mv(b)
    sa, sb = va / len(a), vb / len(b)
    se = math.sqrt(sa + sb)
    dof = (sa + sb) ** 2 / (sa ** 2 / (len(a) - 1) + sb ** 2 / (len(b) - 1))
    return mb - ma, se, dof


@unittest.skipUnless(os.environ.get("LIFT_BIN"), "LIFT_BIN is not set: build lift and set LIFT_BIN (notebooks/run.sh does)")
class TestAgainstServer(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server(os.environ["LIFT_BIN"])
        cls.lift = Client(cls.server.url, ADMIN_KEY)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def test_results_match_welch(self):
        lift = self.lift
        lift.create_metric({"name": "spend", "event_type": "purchase", "aggregation": "sum",
                            "window": {"start_days": 0, "end_days": 7}, "bounds": {"lower": 0, "upper": 100}})
        lift.create_experiment({"key": "client-test", "variants": [{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}],
                                "metrics": ["spend"], "analysis": {"correction": "none"}})
        # Past data: the experiment is started a day ago (a backfill), since
        # exposures cannot precede its start.
        t0 = datetime.now(timezone.utc) - timedelta(days=1)
        lift.start_experiment("client-test", started_at=t0)
        ts = lambda d: (t0 + d).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # noqa: E731
        xs, evs, values = [], [], {"control": [], "treatment": []}
        for i in range(400):
            arm = "treatment" if i % 2 else "control"
            xs.append({"experiment": "client-test", "unit": f"u{i}", "variant": arm, "ts": ts(timedelta(milliseconds=i))})
            v = float((i * 37) % 23) + (3.0 if arm == "treatment" else 0.0)
            if i % 5 == 0:
                v = 0.0  # no purchase: the unit counts with 0
            else:
                evs.append({"event_id": f"e{i}", "unit": f"u{i}", "type": "purchase", "ts": ts(timedelta(milliseconds=i + 1)), "value": v})
            values[arm].append(v)
        self.assertEqual(lift.log_exposures(xs, batch=150), 400)
        self.assertEqual(lift.send_events(evs, batch=100), (len(evs), 0))
        self.assertEqual(lift.send_events(evs[:3]), (0, 3))  # idempotent by event_id

        r = lift.results("client-test")
        self.assertEqual(r["exposures"], {"control": 200, "treatment": 200})
        c = r["metrics"][0]["comparisons"][0]["absolute"]
        est, se, dof = welch(values["control"], values["treatment"])
        self.assertAlmostEqual(c["estimate"], est, places=9)
        self.assertAlmostEqual(c["se"], se, places=9)
        self.assertAlmostEqual(c["dof"], dof, places=6)

        day = lift.daily("client-test", "spend")
        self.assertEqual(day["metric"], "spend")
        last = day["days"][-1]["comparisons"][0]["absolute"]["estimate"]
        self.assertAlmostEqual(last, est, places=9)
        self.assertEqual(lift.plot("client-test", "forest")[:8], b"\x89PNG\r\n\x1a\n")

        with self.assertRaises(APIError) as cm:
            lift.privacy("client-test")
        self.assertEqual((cm.exception.status, cm.exception.code), (404, "not_found"))
        lift.set_privacy("client-test", epsilon=1, release_epsilon=0.25)
        p = lift.private_results("client-test")
        self.assertEqual(p["private"]["epsilon"], 0.25)
        acct = lift.privacy("client-test")
        self.assertAlmostEqual(acct["epsilon_spent"], 0.25)
        self.assertAlmostEqual(acct["epsilon_left"], 0.75)

    def test_errors(self):
        cases = [
            ("unknown experiment", lambda c: c.results("no-such-experiment"), 404, "not_found", ""),
            ("bad weight", lambda c: c.create_experiment({"key": "bad", "variants": [{"name": "a", "weight": 1.5}, {"name": "b", "weight": -0.5}]}),
             400, "invalid", "variants"),
            ("wrong key", lambda c: c.with_key("lift_wrong_key_wrong_key_00").results("x"), 401, "unauthorized", ""),
        ]
        for name, call, status, code, field in cases:
            with self.subTest(name):
                with self.assertRaises(APIError) as cm:
                    call(self.lift)
                e = cm.exception
                self.assertEqual((e.status, e.code), (status, code))
                self.assertTrue(e.message.startswith(field), e.message)
                self.assertTrue(e.request_id)

    def test_health(self):
        self.assertEqual(self.lift.health(), {"status": "ok"})


if __name__ == "__main__":
    unittest.main()
