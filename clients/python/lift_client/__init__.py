"""A small Python client for Lift's REST API.

It is what the notebooks in ``notebooks/`` use; it wraps ``requests`` and adds
nothing the API does not have: each method is one route (see ``docs/api.md``),
answers are the decoded JSON, and an error answer raises ``APIError`` with the
API's ``code``, ``message`` and ``request_id``.

    from lift_client import Client
    lift = Client.from_env()                  # LIFT_URL and LIFT_KEY
    r = lift.results("checkout-button")
    print(r["metrics"][0]["comparisons"][0]["relative"])

``run_cli`` runs the ``lift`` binary (``LIFT_BIN``, default ``lift`` on PATH)
for the command-line analyses (``lift did``, ``lift uplift``) and decodes
their JSON.
"""

import json
import os
import subprocess
from datetime import datetime, timezone
from urllib.parse import quote

import requests

__all__ = ["APIError", "Client", "batches", "run_cli", "comparison_rows"]

#: The most events ``POST /v1/events`` takes in one request (api.MaxEventBatch).
MAX_EVENT_BATCH = 10_000
#: The exposures sent per request by ``Client.log_exposures`` (the API takes up to 100,000).
EXPOSURE_BATCH = 10_000


class APIError(Exception):
    """An error answer of the API: ``status`` (HTTP), ``code`` (the error's
    kind, e.g. ``invalid``, ``not_found``, ``budget_exhausted``), ``message``
    (which starts with the offending field when there is one) and
    ``request_id`` (to find the request in the server's log)."""

    def __init__(self, status, code, message, request_id=None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id

    @classmethod
    def from_response(cls, resp):
        """Builds the error from an answer whose status is 400 or more; a body
        that is not the API's error JSON keeps its first 200 characters."""
        try:
            e = resp.json()["error"]
            return cls(resp.status_code, e.get("code", ""), e.get("message", ""), e.get("request_id"))
        except (ValueError, KeyError, TypeError):
            return cls(resp.status_code, "", resp.text[:200])


def batches(items, size):
    """Yields consecutive slices of ``items`` of at most ``size`` elements."""
    if size < 1:
        raise ValueError(f"size must be at least 1, got {size}")
    for i in range(0, len(items), size):
        yield items[i:i + size]


class Client:
    """One Lift server and one API key.

    ``session`` may be any object with ``requests.Session``'s ``request``
    method (the unit tests pass a recorder)."""

    def __init__(self, url, key, timeout=120, session=None):
        if not url:
            raise ValueError("url is empty")
        self.url = url.rstrip("/")
        self.key = key
        self.timeout = timeout
        self.session = session if session is not None else requests.Session()

    @classmethod
    def from_env(cls, url_var="LIFT_URL", key_var="LIFT_KEY", **kw):
        """A client for the server named by the environment (``notebooks/run.sh``
        sets LIFT_URL and LIFT_KEY)."""
        url, key = os.environ.get(url_var), os.environ.get(key_var)
        if not url or not key:
            raise RuntimeError(f"set {url_var} and {key_var} (notebooks/run.sh does) to the server's URL and an API key")
        return cls(url, key, **kw)

    def with_key(self, key):
        """The same server with another API key (e.g. a viewer's)."""
        return Client(self.url, key, self.timeout, self.session)

    # --- plumbing -------------------------------------------------------

    def request(self, method, path, params=None, body=None, raw=False):
        """Sends one request; answers the decoded JSON (or the bytes when
        ``raw``), raises APIError for a status of 400 or more."""
        headers = {"Authorization": f"Bearer {self.key}"}
        kw = {"headers": headers, "params": params, "timeout": self.timeout}
        if body is not None:
            headers["Content-Type"] = "application/json"
            kw["data"] = json.dumps(body)
        resp = self.session.request(method, self.url + path, **kw)
        if resp.status_code >= 400:
            raise APIError.from_response(resp)
        if raw:
            return resp.content
        if resp.status_code == 204 or not resp.content:
            return None
        return resp.json()

    def get(self, path, **params):
        return self.request("GET", path, params=params or None)

    def post(self, path, body=None, **params):
        return self.request("POST", path, params=params or None, body=body if body is not None else {})

    def put(self, path, body):
        return self.request("PUT", path, body=body)

    # --- registry -------------------------------------------------------

    def health(self):
        return self.get("/healthz")

    def create_metric(self, metric):
        """``POST /v1/metrics`` (docs/metrics.md)."""
        return self.post("/v1/metrics", metric)

    def metric(self, name):
        return self.get("/v1/metrics/" + _seg(name))

    def create_experiment(self, experiment):
        """``POST /v1/experiments``; the experiment starts as a draft."""
        return self.post("/v1/experiments", experiment)

    def start_experiment(self, key, started_at=None):
        """``POST /v1/experiments/KEY/start``. ``started_at`` (an RFC 3339 string
        or an aware ``datetime``) starts a backfill: exposures of past data are
        accepted from that time on (docs/api.md, Backfills)."""
        if started_at is None:
            return self.post(f"/v1/experiments/{_seg(key)}/start")
        if isinstance(started_at, datetime):
            if started_at.tzinfo is None:
                raise ValueError("started_at must be timezone-aware")
            started_at = started_at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
        return self.post(f"/v1/experiments/{_seg(key)}/start", {"started_at": started_at})

    def experiment(self, key):
        return self.get("/v1/experiments/" + _seg(key))

    def create_key(self, name, role):
        """``POST /v1/keys``: a new API key (its secret is in the answer, once)."""
        return self.post("/v1/keys", {"name": name, "role": role})

    # --- ingestion ------------------------------------------------------

    def log_exposures(self, exposures, batch=EXPOSURE_BATCH):
        """``POST /v1/exposures`` in batches; answers the number accepted."""
        return sum(self.post("/v1/exposures", {"exposures": b})["accepted"] for b in batches(exposures, batch))

    def send_events(self, events, batch=MAX_EVENT_BATCH):
        """``POST /v1/events`` in batches; answers (accepted, duplicates)."""
        acc = dup = 0
        for b in batches(events, batch):
            r = self.post("/v1/events", {"events": b})
            acc, dup = acc + r["accepted"], dup + r.get("duplicates", 0)
        return acc, dup

    # --- results --------------------------------------------------------

    def results(self, key, **params):
        """``GET /v1/experiments/KEY/results`` (docs/results.md)."""
        return self.get(f"/v1/experiments/{_seg(key)}/results", **params)

    def daily(self, key, metric):
        """``GET /v1/experiments/KEY/results/daily?metric=NAME``: the cumulative
        effect as it stood at the end of each day."""
        return self.get(f"/v1/experiments/{_seg(key)}/results/daily", metric=metric)

    def plot(self, key, name, fmt="png"):
        """``GET /v1/experiments/KEY/plots/NAME.FMT``: a chart's bytes."""
        return self.request("GET", f"/v1/experiments/{_seg(key)}/plots/{_seg(name)}.{fmt}", raw=True)

    # --- privacy --------------------------------------------------------

    def set_privacy(self, key, epsilon, release_epsilon, delta=0.0, **extra):
        """``PUT /v1/experiments/KEY/privacy``: the experiment's budget."""
        body = {"epsilon": epsilon, "delta": delta, "release_epsilon": release_epsilon}
        body.update(extra)
        return self.put(f"/v1/experiments/{_seg(key)}/privacy", body)

    def privacy(self, key, limit=None):
        """``GET /v1/experiments/KEY/privacy``: budget, spent and ledger."""
        return self.get(f"/v1/experiments/{_seg(key)}/privacy", **({"limit": limit} if limit else {}))

    def private_results(self, key):
        """``GET /v1/experiments/KEY/results/private``: a DP release (spends
        ``release_epsilon`` unless the server serves a stored release)."""
        return self.get(f"/v1/experiments/{_seg(key)}/results/private")

    # --- quasi-experiments ----------------------------------------------

    def did(self, request, **params):
        """``POST /v1/analyses/did`` (docs/quasi-api.md)."""
        return self.request("POST", "/v1/analyses/did", params=params or None, body=request, raw="format" in params)

    def uplift(self, request, **params):
        """``POST /v1/analyses/uplift`` (docs/quasi-api.md)."""
        return self.request("POST", "/v1/analyses/uplift", params=params or None, body=request, raw="format" in params)


def _seg(s):
    """One path segment, escaped."""
    return quote(str(s), safe="")


def run_cli(*args, binary=None):
    """Runs ``lift ARGS... --format json`` and answers the decoded JSON; a
    non-zero exit raises RuntimeError with the command's error message."""
    binary = binary or os.environ.get("LIFT_BIN") or "lift"
    cmd = [binary, *map(str, args)]
    if "--format" not in args:
        cmd += ["--format", "json"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:2])} exited {p.returncode}: {p.stderr.strip()}")
    return json.loads(p.stdout)


def comparison_rows(results, adjusted=True):
    """Flattens experiment results into one dict per metric and compared
    variant: the relative and absolute effects with their intervals, the
    p-value (Holm/BH-adjusted when the plan corrects and ``adjusted``), and
    CUPED's variance reduction where a covariate was used. Pass the rows to
    ``pandas.DataFrame``."""
    rows = []
    for m in results.get("metrics", []):
        if "error" in m:
            rows.append({"metric": m["name"], "error": m["error"]})
            continue
        for c in m.get("comparisons", []):
            rel, ab = c["relative"], c["absolute"]
            p = rel["p_value"]
            if adjusted and "adjusted_p_value" in c:
                p = c["adjusted_p_value"]["relative"]
            rows.append({
                "metric": m["name"], "variant": c["variant"], "primary": bool(m.get("primary")),
                "relative": rel["estimate"], "rel_ci_low": rel["ci_low"], "rel_ci_high": rel["ci_high"],
                "absolute": ab["estimate"], "abs_ci_low": ab["ci_low"], "abs_ci_high": ab["ci_high"],
                "p_value": p, "cuped_variance_reduction": (c.get("cuped") or {}).get("variance_reduction"),
            })
    return rows
