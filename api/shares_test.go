package api

import (
	"bytes"
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiment"
)

// TestShareLinks follows a share link's life: an analyst creates it, someone
// without a key opens the report, a chart and the CSV (DP numbers only, one
// release spent on behalf of the link however often it is opened), the link is
// listed without its token, and once revoked it answers 404 like an unknown one.
func TestShareLinks(t *testing.T) {
	clock := newTestClock()
	ts := newTestServer(t, withClock(clock))
	setupPrivate(t, ts)
	ts.must(http.StatusOK, "PUT", "/v1/experiments/checkout/privacy", map[string]any{"epsilon": 1, "release_epsilon": 0.4}, nil)
	analyst := ts.key("ana", experiment.RoleAnalyst)
	viewer := ts.key("exec", experiment.RoleViewer)

	for _, c := range []struct {
		key, path string
		body      any
		status    int
	}{
		{viewer, "/v1/experiments/checkout/shares", map[string]any{}, http.StatusForbidden},
		{analyst, "/v1/experiments/nope/shares", map[string]any{}, http.StatusNotFound},
		{analyst, "/v1/experiments/checkout/shares", map[string]any{"expires_in": "400d"}, http.StatusBadRequest},
		{analyst, "/v1/experiments/checkout/shares", map[string]any{"expires_in": "-1h"}, http.StatusBadRequest},
	} {
		if status, b := ts.do("POST", c.path, c.key, c.body); status != c.status {
			t.Errorf("POST %s %v: %d %s, want %d", c.path, c.body, status, b, c.status)
		}
	}
	var link shareOut
	ts.mustAs(analyst, http.StatusCreated, "POST", "/v1/experiments/checkout/shares", map[string]any{"expires_in": "72h"}, &link)
	if !strings.HasPrefix(link.Token, "lsh_") || link.URL != "/shared/"+link.Token+"/report.html" ||
		link.ExpiresAt.Sub(link.CreatedAt).Hours() != 72 || link.CreatedBy != "ana" {
		t.Fatalf("created link %+v", link)
	}

	// Opened without a key, three times: the report says it is DP-noised.
	for range 3 {
		resp := ts.request("GET", link.URL, "", nil, nil)
		var page bytes.Buffer
		page.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(page.String(), "DP-noised") || resp.Header.Get("Cache-Control") != "no-store" ||
			resp.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Fatalf("shared page: %d %v, DP-noised %v", resp.StatusCode, resp.Header, strings.Contains(page.String(), "DP-noised"))
		}
	}
	base := "/shared/" + link.Token
	if status, b := ts.do("GET", base+"/plots/forest.svg", "", nil); status != 200 || !bytes.Contains(b, []byte("<svg")) {
		t.Errorf("shared chart: %d", status)
	}
	if status, _ := ts.do("GET", base+"/plots/cumulative.svg", "", nil); status != http.StatusNotFound {
		t.Errorf("the exact-only cumulative chart through a link: %d, want 404", status)
	}
	status, csvShared := ts.do("GET", base+"/results.csv", "", nil)
	_, csvExact := ts.do("GET", "/v1/experiments/checkout/results.csv", analyst, nil)
	if status != 200 || bytes.Equal(csvShared, csvExact) {
		t.Errorf("shared CSV: %d, identical to the exact one: %v", status, bytes.Equal(csvShared, csvExact))
	}
	// One release, spent on behalf of the link; the later views reused it.
	var acct experiment.PrivacyAccount
	ts.must(http.StatusOK, "GET", "/v1/experiments/checkout/privacy", nil, &acct)
	if math.Abs(acct.EpsilonSpent-0.4) > 1e-12 || len(acct.Entries) != 1 || acct.Entries[0].Who != "share:"+link.ID {
		t.Errorf("ledger after the shared views: spent %g, entries %+v", acct.EpsilonSpent, acct.Entries)
	}

	// New data the same day: the link and a viewer key get the period's release,
	// spending nothing; the next day's first reader makes a new one.
	if _, _, err := ts.db.IngestEvents(context.Background(), []experiment.Event{{EventID: "late", Unit: "u0", Type: "purchase",
		TS: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), Value: 5}}); err != nil {
		t.Fatal(err)
	}
	status, again := ts.do("GET", base+"/results.csv", "", nil)
	if status != 200 || !bytes.Equal(again, csvShared) {
		t.Fatalf("shared CSV after new data: %d, the same as before: %v", status, bytes.Equal(again, csvShared))
	}
	var same PrivateResults
	ts.mustAs(viewer, http.StatusOK, "GET", "/v1/experiments/checkout/results", nil, &same)
	ts.must(http.StatusOK, "GET", "/v1/experiments/checkout/privacy", nil, &acct)
	if math.Abs(acct.EpsilonSpent-0.4) > 1e-12 || math.Abs(same.Private.EpsilonSpent-0.4) > 1e-12 {
		t.Errorf("views after new data the same day spent: %g, want still 0.4", acct.EpsilonSpent)
	}
	clock.Advance(24 * time.Hour)
	var fresh PrivateResults
	ts.mustAs(viewer, http.StatusOK, "GET", "/v1/experiments/checkout/results", nil, &fresh)
	if math.Abs(fresh.Private.EpsilonSpent-0.8) > 1e-12 || !fresh.Private.ReleasedAt.Equal(clock.Now()) {
		t.Errorf("viewer the next day: %+v, want a new release (0.8 spent)", fresh.Private)
	}

	var list shareList
	status, b := ts.do("GET", "/v1/experiments/checkout/shares", analyst, nil)
	if status != 200 || bytes.Contains(b, []byte(link.Token)) {
		t.Errorf("list: %d, holds the token: %v", status, bytes.Contains(b, []byte(link.Token)))
	}
	ts.mustAs(analyst, http.StatusOK, "GET", "/v1/experiments/checkout/shares", nil, &list)
	if len(list.Shares) != 1 || list.Shares[0].ID != link.ID {
		t.Errorf("list %+v", list)
	}
	ts.mustAs(analyst, http.StatusNoContent, "DELETE", "/v1/shares/"+link.ID, nil, nil)
	for _, path := range []string{link.URL, base + "/results.csv", "/shared/lsh_unknown/report.html", "/shared/nothing/report.html"} {
		status, b := ts.do("GET", path, "", nil)
		if e := errorOf(t, b); status != http.StatusNotFound || !strings.Contains(e.Message, "unknown, expired or revoked") {
			t.Errorf("GET %s after revocation: %d %+v, want 404", path, status, e)
		}
	}
	if status, _ := ts.do("DELETE", "/v1/shares/share_nope", analyst, nil); status != http.StatusNotFound {
		t.Errorf("revoking an unknown link: %d, want 404", status)
	}
	var audit struct {
		Entries []experiment.AuditEntry `json:"entries"`
	}
	ts.must(http.StatusOK, "GET", "/v1/audit?entity=share", nil, &audit)
	if len(audit.Entries) != 2 {
		t.Errorf("audit of share links: %+v, want create and revoke", audit.Entries)
	}
}

func TestLogPathHidesShareTokens(t *testing.T) {
	for _, c := range []struct{ path, want string }{
		{"/shared/lsh_abc/report.html", "/shared/…/report.html"},
		{"/shared/lsh_abc/plots/forest.svg", "/shared/…/plots/forest.svg"},
		{"/shared/lsh_abc", "/shared/…"},
		{"/v1/experiments/x/results", "/v1/experiments/x/results"},
	} {
		c2 := echo.New().NewContext(httptest.NewRequest("GET", c.path, nil), httptest.NewRecorder())
		if got := logPath(c2); got != c.want {
			t.Errorf("logPath(%s) = %s, want %s", c.path, got, c.want)
		}
	}
}
