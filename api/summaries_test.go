package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/jobs"
	"github.com/liftlab/lift/privacy"
	"github.com/liftlab/lift/reports"
)

// newJobServer is a test server with a job scheduler whose digests use BuildDigest.
func newJobServer(t *testing.T) *tserver {
	t.Helper()
	var sched *jobs.Scheduler
	ts := newTestServer(t, func(o *Options) {
		db := o.Store
		kinds := jobs.Kinds(jobs.Deps{Store: db, Digest: func(ctx context.Context, j *experiment.Job, p time.Time, target string) (*experiment.Digest, error) {
			return BuildDigest(ctx, db, ResultsOver(db), j, p, target, DigestOptions{Privacy: privacy.DefaultOptions()})
		}, PrivateGuardrails: func(ctx context.Context, j *experiment.Job, key string) ([]jobs.GuardrailCheck, bool, error) {
			return PrivateGuardrails(ctx, db, ResultsOver(db), key, "monitor:"+j.Name, privacy.DefaultOptions())
		}})
		checks := jobs.Checks(jobs.Deps{Store: db})
		var err error
		if sched, err = jobs.New(db, kinds, jobs.Options{Retries: -1, Checks: checks}); err != nil {
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

func TestJobsAndSummaries(t *testing.T) {
	ts := newJobServer(t)
	setupPrivate(t, ts)
	ts.must(http.StatusOK, "PUT", "/v1/experiments/checkout/privacy", map[string]any{"epsilon": 2, "release_epsilon": 0.5}, nil)
	viewer := ts.key("exec", experiment.RoleViewer)

	// Bad schedules are refused with the field named.
	for _, tc := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"name": "w", "kind": "digest", "cron": "61 9 * * 1"}, "cron"},
		{map[string]any{"name": "w", "kind": "fortnightly"}, "kind"},
		{map[string]any{"name": "w", "kind": "digest", "cron": "0 9 * * 1", "time_zone": "Nowhere/City"}, "time_zone"},
	} {
		status, b := ts.do("POST", "/v1/jobs", ts.admin, tc.body)
		if e := errorOf(t, b); status != 400 || !strings.Contains(e.Message, tc.field) {
			t.Errorf("POST /v1/jobs %v = %d %+v, want 400 naming %s", tc.body, status, e, tc.field)
		}
	}
	if status, _ := ts.do("POST", "/v1/jobs", viewer, map[string]any{"name": "w", "kind": "digest", "cron": "0 9 * * 1"}); status != 403 {
		t.Errorf("viewer schedules a job: %d, want 403", status)
	}
	ts.must(http.StatusCreated, "POST", "/v1/jobs", map[string]any{"name": "weekly", "kind": "digest", "cron": "0 9 * * 1", "time_zone": "Europe/Paris", "target": "checkout"}, nil)
	// A summary of an earlier period, so that the one triggered below has a trend.
	ctx := context.Background()
	j, err := ts.db.GetJob(ctx, "weekly")
	if err != nil {
		t.Fatal(err)
	}
	// Built a week ago: it read (and spent) that day's release.
	weekAgo := time.Now().Add(-7 * 24 * time.Hour).Truncate(time.Second)
	first, err := BuildDigest(ctx, ts.db, ResultsOver(ts.db), j, weekAgo, "checkout", DigestOptions{Now: func() time.Time { return weekAgo }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.db.PublishDigest(ctx, first); err != nil {
		t.Fatal(err)
	}
	var run experiment.JobRun
	ts.must(http.StatusOK, "POST", "/v1/jobs/weekly/run", nil, &run)
	if run.Status != experiment.RunSucceeded || run.Trigger != "manual" {
		t.Fatalf("manual run = %+v", run)
	}
	var runs runList
	ts.must(http.StatusOK, "GET", "/v1/jobs/weekly/runs", nil, &runs)
	if len(runs.Runs) != 1 || runs.Runs[0].ID != run.ID {
		t.Errorf("runs = %+v", runs)
	}

	var list summaryList
	ts.mustAs(viewer, http.StatusOK, "GET", "/v1/summaries", nil, &list)
	if len(list.Summaries) != 2 {
		t.Fatalf("summaries = %+v, want 2", list)
	}
	id := list.Summaries[0].ID
	var d experiment.Digest
	ts.mustAs(viewer, http.StatusOK, "GET", "/v1/summaries/"+id, nil, &d)
	var rd reports.Digest
	if err := json.Unmarshal(d.JSON, &rd); err != nil {
		t.Fatal(err)
	}
	// setupPrivate's treatment pays 12 against control's 10: a true lift of +20%.
	if len(rd.Trend) != 2 {
		t.Errorf("trend has %d points, want 2 (the earlier summary and this one)", len(rd.Trend))
	}
	if rd.Headline == nil || rd.Headline.Metric != "revenue" || !rd.Privacy.Private {
		t.Fatalf("digest headline = %+v, privacy %+v", rd.Headline, rd.Privacy)
	}
	// Its interval accounts for sampling and noise, so the estimate lies within six of
	// its standard errors of the true lift (a false failure is negligible).
	if l := rd.Headline.Lift; math.Abs(l.Estimate-0.2) > 6*(l.High-l.Low)/(2*1.96) || !(l.Low < l.Estimate && l.Estimate < l.High) {
		t.Errorf("released lift %+v is not consistent with the true +20%%", l)
	}
	status, pdf := ts.do("GET", "/v1/summaries/"+id+"/pdf", viewer, nil)
	if status != 200 || !bytes.HasPrefix(pdf, []byte("%PDF-")) {
		t.Errorf("PDF: %d, %d bytes", status, len(pdf))
	}
	// One release was spent; the digest is kept and not re-released for the same period.
	var acct experiment.PrivacyAccount
	ts.must(http.StatusOK, "GET", "/v1/experiments/checkout/privacy", nil, &acct)
	if acct.EpsilonSpent != 1 {
		t.Errorf("ε spent %g, want 1 (two digest releases of 0.5)", acct.EpsilonSpent)
	}
	again, err := BuildDigest(ctx, ts.db, ResultsOver(ts.db), j, d.Period, "checkout", DigestOptions{})
	if err != nil || again.ID != id {
		t.Fatalf("rebuilding the same period: %v", err)
	}
	ts.must(http.StatusOK, "GET", "/v1/experiments/checkout/privacy", nil, &acct)
	if acct.EpsilonSpent != 1 {
		t.Errorf("rebuilding the same period spent ε: %g", acct.EpsilonSpent)
	}

	// The page: no key → the console's sign-in form; ingest key → 403; a viewer
	// key signs in (the cookie holds a session id).
	if resp := ts.request("GET", "/summaries", "", nil, nil); resp.Request.URL.Path != "/login" || resp.StatusCode != 200 {
		t.Errorf("/summaries without a key: %d at %s, want 200 at the sign-in form /login", resp.StatusCode, resp.Request.URL)
	} else {
		resp.Body.Close()
	}
	ing := ts.key("svc", experiment.RoleIngest)
	if status, _ := ts.do("GET", "/summaries?key="+ing, "", nil); status != 403 {
		t.Errorf("/summaries with an ingest key: %d, want 403", status)
	}
	chromiumCheck(t, ts.http.URL, viewer, id, rd.HeadlineText())
}

// chromiumCheck opens the summaries page and one summary in Debian's headless
// Chromium, checks the rendered pages show the headline, the chart and the facts
// an executive needs (units, dates, a PDF link the page's cookie opens), and
// saves screenshots (paths in the test log; LIFT_TEST_ARTIFACTS chooses the folder).
func chromiumCheck(t *testing.T, base, key, id, headline string) {
	browse := chromium(t)
	if browse == nil {
		return
	}
	list := string(browse("--dump-dom", base+"/summaries?key="+key))
	for _, want := range []string{"Incrementality summaries", "/summaries/" + id, "/summaries/" + id + "/pdf", "Units: control", "privacy guarantee"} {
		if !strings.Contains(htmlText(list), want) {
			t.Errorf("the summaries page rendered by Chromium lacks %q:\n%s", want, list)
		}
	}
	page := string(browse("--dump-dom", base+"/summaries/"+id+"?key="+key))
	for _, want := range []string{headline, "<svg", "differentially private", "Units: control", "Running since", "privacy guarantee"} {
		if !strings.Contains(htmlText(page), want) {
			t.Errorf("the summary page rendered by Chromium lacks %q", want)
		}
	}
	screenshot(t, browse, base+"/summaries/"+id+"?key="+key, "summary.png")
	screenshot(t, browse, base+"/summaries?key="+key, "summaries.png")
}

// chromium returns a runner of Debian's headless Chromium, or nil (logged) when
// it is not installed; with LIFT_REQUIRE_CHROMIUM set (CI, whose .ci/run installs
// it), a missing Chromium fails the test instead.
func chromium(t *testing.T) func(args ...string) []byte {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("LIFT_REQUIRE_CHROMIUM") != "" {
			t.Fatal("chromium not installed (apt-get install chromium) and LIFT_REQUIRE_CHROMIUM is set")
		}
		t.Log("chromium not installed (apt-get install chromium): browser check skipped")
		return nil
	}
	return func(args ...string) []byte {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
			"--disable-component-update", "--disable-sync", "--user-data-dir=" + t.TempDir()}
		base = append(base, "--enable-logging=stderr", "--v=0") // console messages, CSP violations among them
		cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Fatalf("chromium %v: %v", args, err)
		}
		if strings.Contains(stderr.String(), "Content Security Policy") {
			t.Errorf("chromium %v reports CSP violations:\n%s", args, stderr.String())
		}
		return stdout.Bytes()
	}
}

// screenshot saves a screenshot of url as name under $LIFT_TEST_ARTIFACTS
// (default the system temp folder) and logs its path.
func screenshot(t *testing.T, browse func(...string) []byte, url, name string) {
	t.Helper()
	screenshotSized(t, browse, url, name, 1300)
}

// screenshotSized is screenshot with a window height in pixels (1000 wide), for
// pages longer than a screen.
func screenshotSized(t *testing.T, browse func(...string) []byte, url, name string, height int) {
	t.Helper()
	out := os.Getenv("LIFT_TEST_ARTIFACTS")
	if out == "" {
		out = filepath.Join(os.TempDir(), "lift-test-artifacts")
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(out, name)
	browse(fmt.Sprintf("--window-size=1000,%d", height), "--screenshot="+shot, url)
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 10_000 {
		t.Errorf("screenshot %s: %v", shot, err)
	} else {
		t.Logf("screenshot: %s", shot)
	}
}

// htmlText undoes the entity escapes html/template puts in text ("+" → "&#43;").
func htmlText(s string) string {
	return strings.NewReplacer("&#43;", "+", "&amp;", "&", "&#39;", "'", "&#34;", `"`).Replace(s)
}

// TestDigestSubjects publishes digests of a holdout and of a journey: each spends
// from its own budget (the holdout's; the journey's experiment's), says what it
// summarizes in its title, and a subject the scheduler does not know is refused at
// the job's creation with the field named.
func TestDigestSubjects(t *testing.T) {
	ts := newJobServer(t)
	setupPrivate(t, ts)
	setupHoldout(t, ts)
	ctx := context.Background()
	if _, err := ts.db.CreateJourney(ctx, "t", &experiment.Journey{Key: "home", Experiment: "checkout", Model: "shop", K: 3,
		ControlPolicy: experiment.ControlPolicy{Kind: experiment.ControlFixed, Items: []string{"a", "b", "c"}}}); err != nil {
		t.Fatal(err)
	}
	ts.must(http.StatusOK, "PUT", "/v1/experiments/checkout/privacy", map[string]any{"epsilon": 2, "release_epsilon": 0.5}, nil)
	ts.must(http.StatusOK, "PUT", "/v1/holdouts/global/privacy", map[string]any{"epsilon": 2, "release_epsilon": 1}, nil)
	ts.must(http.StatusCreated, "POST", "/v1/jobs", map[string]any{"name": "long-run", "kind": "digest", "every": "168h",
		"target": "global", "params": map[string]any{"subject": "holdout"}}, nil)
	ts.must(http.StatusCreated, "POST", "/v1/jobs", map[string]any{"name": "journeys", "kind": "digest", "every": "168h",
		"params": map[string]any{"subject": "journey"}}, nil)
	// A subject the scheduler does not know is refused when the job is created.
	status, b := ts.do("POST", "/v1/jobs", ts.admin, map[string]any{"name": "teams", "kind": "digest", "every": "168h",
		"params": map[string]any{"subject": "team"}})
	if e := errorOf(t, b); status != 400 || !strings.HasPrefix(e.Message, "params.subject:") {
		t.Errorf("digest job of subject team: %d %+v, want 400 naming params.subject", status, e)
	}

	for _, c := range []struct {
		job, target, title, metric, variant, budget string
		spent                                       float64
	}{
		{"long-run", "holdout:global", "holdout global, cohort v1", "converted", "exposed", "/v1/holdouts/global/privacy", 1},
		{"journeys", "journey:home", "Personalized journey home", "revenue", "treatment", "/v1/experiments/checkout/privacy", 0.5},
	} {
		var run experiment.JobRun
		ts.must(http.StatusOK, "POST", "/v1/jobs/"+c.job+"/run", nil, &run)
		if run.Status != experiment.RunSucceeded {
			t.Fatalf("%s: run %+v", c.job, run)
		}
		var out struct {
			Digests []string `json:"digests"`
		}
		if err := json.Unmarshal(run.Output, &out); err != nil || len(out.Digests) != 1 {
			t.Fatalf("%s: output %s (%v)", c.job, run.Output, err)
		}
		var d experiment.Digest
		ts.must(http.StatusOK, "GET", "/v1/summaries/"+out.Digests[0], nil, &d)
		var rd reports.Digest
		if err := json.Unmarshal(d.JSON, &rd); err != nil {
			t.Fatal(err)
		}
		if d.Target != c.target || !strings.Contains(d.Title, c.title) || rd.Headline == nil ||
			rd.Headline.Metric != c.metric || rd.Headline.Variant != c.variant || !rd.Privacy.Private {
			t.Errorf("%s: digest %q %q headline %+v", c.job, d.Target, d.Title, rd.Headline)
		}
		var acct experiment.PrivacyAccount
		ts.must(http.StatusOK, "GET", c.budget, nil, &acct)
		if math.Abs(acct.EpsilonSpent-c.spent) > 1e-12 {
			t.Errorf("%s: ε spent %g from %s, want %g", c.job, acct.EpsilonSpent, c.budget, c.spent)
		}
	}
	if status, _ := ts.do("GET", "/v1/jobs/teams", ts.admin, nil); status != 404 {
		t.Errorf("the refused job was stored: GET /v1/jobs/teams = %d, want 404", status)
	}
}
