package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
)

// upliftSummary is the line the analyses page prints of an uplift answer.
func upliftSummary(r upliftResult) string {
	s := "ATE " + consoleNum(r.ATE.Estimate) + " [" + consoleNum(r.ATE.CILow) + ", " + consoleNum(r.ATE.CIHigh) + "] · Qini " + consoleNum(r.Qini)
	if r.QiniLow != nil {
		s += " [" + consoleNum(*r.QiniLow) + ", " + consoleNum(*r.QiniHigh) + "]"
	}
	return s + " · AUUC " + consoleNum(r.AUUC)
}

// TestConsoleUpliftForm: the analyses page's uplift form runs
// POST /v1/analyses/uplift on the stored data (plantUplift: exposures, events
// and unit attributes) and shows its numbers (compared with the API's JSON for
// the same request) and its two charts; a bad field gets the API's message
// next to it, with the API's status; a forged form and a viewer are refused.
func TestConsoleUpliftForm(t *testing.T) {
	ts := newTestServer(t)
	plantUplift(t, ts, 600)
	analyst := ts.key("ana", experiment.RoleAnalyst)
	b := newBrowser(t, ts)
	b.signIn(analyst)
	if resp := b.do("/analyses", nil); resp.StatusCode != 200 {
		t.Fatalf("/analyses: %d\n%s", resp.StatusCode, b.last)
	}
	tok := b.csrf()
	form := url.Values{"csrf": {tok}, "kind": {"uplift"}, "experiment": {"promo"}, "uplift_metric": {"revenue"}, "features": {"age, segment"},
		"treatment": {""}, "uplift_control": {""}, "learner": {"t"}, "base": {"ridge"}, "bootstrap": {"50"}, "seed": {"7"}}
	body := map[string]any{"experiment": "promo", "metric": "revenue", "features": []string{"age", "segment"}, "learner": "t", "base": "ridge", "bootstrap": 50, "seed": 7}
	var api upliftResult
	ts.mustAs(analyst, http.StatusOK, "POST", "/v1/analyses/uplift", body, &api)
	if resp := b.do("/analyses", form); resp.StatusCode != 200 {
		t.Fatalf("uplift form: %d\n%s", resp.StatusCode, b.last)
	}
	summary := regexp.MustCompile(`<p id="uplift-summary">([^<]*)</p>`).FindStringSubmatch(b.last)
	if summary == nil || !strings.HasPrefix(htmlText(summary[1]), upliftSummary(api)) {
		t.Errorf("the page's summary %q, the API's %q", summary, upliftSummary(api))
	}
	if want := api.Learner + "-learner on " + api.Base; summary != nil && !strings.Contains(summary[1], want) {
		t.Errorf("the summary lacks %q", want)
	}
	if summary != nil && !strings.Contains(summary[1], " "+itoa(api.NTrain)+" training units, "+itoa(api.NTest)+" held out") {
		t.Errorf("the summary's units differ from the API's %d training, %d held out", api.NTrain, api.NTest)
	}
	if h := "Uplift of revenue: " + api.Treated + " vs " + api.Control; !strings.Contains(b.last, h) {
		t.Errorf("the page lacks %q", h)
	}
	for _, ch := range []string{"qini", "uplift"} {
		if !strings.Contains(b.last, `data-chart="`+ch+`"><svg`) {
			t.Errorf("the page lacks the %s chart", ch)
		}
	}
	// The form keeps what was typed.
	if !strings.Contains(b.last, `id="features" name="features" value="age, segment"`) {
		t.Errorf("the form lost the features typed")
	}

	for _, c := range []struct {
		name, field, value string
		apiBody            map[string]any // the API's request with the same mistake; nil: the form's own check
		formField, want    string         // where the message goes; the form's own message
	}{
		{"absent attribute", "features", "age, height", map[string]any{"features": []string{"age", "height"}}, "features", ""},
		{"learner", "learner", "z", map[string]any{"learner": "z"}, "learner", ""},
		{"unknown experiment", "experiment", "zzz", map[string]any{"experiment": "zzz"}, "experiment", ""},
		{"same arms", "treatment", "control", map[string]any{"treatment": "control"}, "treatment", ""},
		{"unknown metric", "uplift_metric", "nope", map[string]any{"metric": "nope"}, "uplift_metric", ""},
		{"test share", "test_share", "1.5", map[string]any{"test_share": 1.5}, "test_share", ""},
		{"alpha", "uplift_alpha", "2", map[string]any{"alpha": 2}, "uplift_alpha", ""},
		{"bootstrap, not a number", "bootstrap", "many", nil, "bootstrap", `bootstrap: must be a whole number, got "many"`},
		{"seed, negative", "seed", "-1", nil, "seed", `seed: must be a whole number from 0, got "-1"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := url.Values{}
			for k, v := range form {
				f[k] = v
			}
			f.Set(c.field, c.value)
			resp := b.do("/analyses", f)
			want, status := c.want, http.StatusBadRequest
			if c.apiBody != nil {
				bb := map[string]any{}
				for k, v := range body {
					bb[k] = v
				}
				for k, v := range c.apiBody {
					bb[k] = v
				}
				var raw []byte
				status, raw = ts.do("POST", "/v1/analyses/uplift", analyst, bb)
				if status < 400 {
					t.Fatalf("the API accepted %v: %d", c.apiBody, status)
				}
				want = errorOf(t, raw).Message
			}
			if resp.StatusCode != status {
				t.Errorf("status %d, the API's %d", resp.StatusCode, status)
			}
			m := regexp.MustCompile(`<p class="error" id="` + c.formField + `-error" role="alert">([^<]*)</p>`).FindStringSubmatch(b.last)
			if m == nil || htmlText(m[1]) != want {
				t.Errorf("next to %s: %q, want %q", c.formField, m, want)
			}
			if !strings.Contains(b.last, `id="`+c.formField+`" name="`+c.formField+`"`) || !strings.Contains(b.last, `aria-describedby="`+c.formField+`-error"`) {
				t.Errorf("the field %s is not marked invalid", c.formField)
			}
			if strings.Contains(b.last, `id="uplift-result"`) {
				t.Errorf("a refused form shows a result")
			}
		})
	}

	forged := url.Values{}
	for k, v := range form {
		forged[k] = v
	}
	forged.Set("csrf", "forged")
	if resp := b.do("/analyses", forged); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a forged form: %d, want 403", resp.StatusCode)
	}
	vb := newBrowser(t, ts)
	vb.signIn(ts.key("exec", experiment.RoleViewer))
	vb.do("/", nil)
	vf := url.Values{}
	for k, v := range form {
		vf[k] = v
	}
	vf.Set("csrf", vb.csrf())
	if resp := vb.do("/analyses", vf); resp.StatusCode != http.StatusForbidden || strings.Contains(vb.last, `id="uplift-result"`) {
		t.Errorf("a viewer's uplift form: %d, want 403 and no result", resp.StatusCode)
	}
}

// TestConsoleUpliftPlaywright runs the uplift form in Debian's Chromium
// through Playwright (testdata/console_uplift.cjs) on the stored data of
// plantUplift: the numbers shown are the API's POST /v1/analyses/uplift JSON
// for the same request, both charts are drawn, and an attribute that no unit
// has gets the API's message next to the features field. NODE_PATH must reach
// playwright-core (LIFT_REQUIRE_PLAYWRIGHT=1 makes its absence a failure, as
// for TestConsolePlaywright).
func TestConsoleUpliftPlaywright(t *testing.T) {
	node := playwrightNode(t)
	ts := newTestServer(t)
	plantUplift(t, ts, 600)
	analyst := ts.key("ana", experiment.RoleAnalyst)
	body := map[string]any{"experiment": "promo", "metric": "revenue", "features": []string{"age", "segment"}, "learner": "t", "base": "ridge", "bootstrap": 50, "seed": 7}
	var api upliftResult
	ts.mustAs(analyst, http.StatusOK, "POST", "/v1/analyses/uplift", body, &api)
	body["features"] = []string{"age", "height"}
	status, raw := ts.do("POST", "/v1/analyses/uplift", analyst, body)
	if status != http.StatusBadRequest {
		t.Fatalf("the API's answer to an absent attribute: %d %s", status, raw)
	}
	apiErr := errorOf(t, raw).Message

	dir := filepath.Join(testArtifacts(), "playwright-uplift")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "testdata/console_uplift.cjs", ts.http.URL, analyst, dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("playwright: %v\n%s", err, stderr.String())
	}
	var got struct {
		Summary, Heading, FeaturesError, Invalid, Kept string
		Charts                                         []struct {
			Name  string
			SVG   bool
			Width float64
		}
		ResultAfterError int
		Problems         []string
	}
	if err := json.Unmarshal(stdout, &got); err != nil {
		t.Fatalf("playwright's answer: %v\n%s", err, stdout)
	}
	if !strings.HasPrefix(got.Summary, upliftSummary(api)) || !strings.Contains(got.Summary, itoa(api.NTrain)+" training units, "+itoa(api.NTest)+" held out") {
		t.Errorf("Chromium shows %q, the API's %q (%d training, %d held out)", got.Summary, upliftSummary(api), api.NTrain, api.NTest)
	}
	if want := "Uplift of revenue: " + api.Treated + " vs " + api.Control; got.Heading != want {
		t.Errorf("heading %q, want %q", got.Heading, want)
	}
	if len(got.Charts) != 2 || got.Charts[0].Name != "qini" || got.Charts[1].Name != "uplift" {
		t.Errorf("charts %+v, want qini and uplift", got.Charts)
	}
	for _, ch := range got.Charts {
		if !ch.SVG || !(ch.Width > 100) {
			t.Errorf("chart %s: drawn %v, %g px wide", ch.Name, ch.SVG, ch.Width)
		}
	}
	if got.FeaturesError != apiErr || got.Invalid != "true" || got.Kept != "age, height" || got.ResultAfterError != 0 {
		t.Errorf("after an absent attribute: message %q (the API's %q), aria-invalid %q, field %q, results shown %d",
			got.FeaturesError, apiErr, got.Invalid, got.Kept, got.ResultAfterError)
	}
	if len(got.Problems) > 0 {
		t.Errorf("the browser reported: %q", got.Problems)
	}
	t.Logf("screenshots: %s", dir)
}

// playwrightNode is node, when it finds playwright-core (NODE_PATH) and
// /usr/bin/chromium is installed; otherwise the test skips, or fails under
// LIFT_REQUIRE_PLAYWRIGHT=1.
func playwrightNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err == nil {
		err = exec.Command(node, "-e", "require('playwright-core')").Run()
	}
	if _, cerr := os.Stat("/usr/bin/chromium"); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		if os.Getenv("LIFT_REQUIRE_PLAYWRIGHT") != "" {
			t.Fatalf("node with playwright-core on NODE_PATH and /usr/bin/chromium are needed: %v", err)
		}
		t.Skipf("node with playwright-core on NODE_PATH (npm install playwright-core) and /usr/bin/chromium are needed: %v", err)
	}
	return node
}

// testArtifacts is the folder of the tests' screenshots ($LIFT_TEST_ARTIFACTS).
func testArtifacts() string {
	if out := os.Getenv("LIFT_TEST_ARTIFACTS"); out != "" {
		return out
	}
	return filepath.Join(os.TempDir(), "lift-test-artifacts")
}
