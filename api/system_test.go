package api

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
)

func TestHealthMetricsRequestID(t *testing.T) {
	ts := newTestServer(t)
	ts.must(http.StatusOK, "GET", "/healthz", nil, nil)
	var ready statusBody
	ts.must(http.StatusOK, "GET", "/readyz", nil, &ready)
	if ready.Status != "ok" {
		t.Fatalf("readyz: %+v", ready)
	}

	// A sane incoming X-Request-ID is kept; otherwise one is made; errors carry it.
	resp := ts.request("GET", "/v1/experiments/nope", ts.admin, nil, http.Header{"X-Request-Id": {"trace-abc-123"}})
	var e apiError
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-Request-ID") != "trace-abc-123" || e.Error.RequestID != "trace-abc-123" || e.Error.Code != "not_found" {
		t.Fatalf("request id header %q, body %+v", resp.Header.Get("X-Request-ID"), e)
	}
	resp = ts.request("GET", "/healthz", "", nil, http.Header{"X-Request-Id": {"bad id with spaces"}})
	resp.Body.Close()
	if rid := resp.Header.Get("X-Request-ID"); rid == "" || strings.Contains(rid, " ") {
		t.Fatalf("generated request id %q", rid)
	}

	// Unknown routes and methods answer the JSON error body too.
	status, b := ts.do("GET", "/v1/nothing", ts.admin, nil)
	if status != 404 || errorOf(t, b).Code != "not_found" {
		t.Fatalf("unknown route: %d %s", status, b)
	}
	status, b = ts.do("PUT", "/v1/keys", ts.admin, nil)
	if status != 405 || errorOf(t, b).Code != "method_not_allowed" {
		t.Fatalf("wrong method: %d %s", status, b)
	}

	status, b = ts.do("GET", "/metrics", ts.admin, nil)
	if status != 200 {
		t.Fatalf("metrics: %d", status)
	}
	for _, want := range []string{
		`lift_http_requests_total{code="404",method="GET",route="/v1/experiments/:key"} 1`,
		`lift_http_request_duration_seconds_bucket{method="GET",route="/readyz"`,
		"go_goroutines",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestOpenAPIMatchesRoutes compares echo's routes with the OpenAPI document both ways.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	ts := newTestServer(t)
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
		Comps   struct {
			Schemas map[string]any `json:"schemas"`
		} `json:"components"`
	}
	ts.must(http.StatusOK, "GET", "/openapi.json", nil, &doc)
	if !strings.HasPrefix(doc.OpenAPI, "3.0") {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	var fromEcho, fromDoc []string
	for _, r := range ts.srv.echo.Routes() {
		p, _ := openAPIPath(r.Path)
		fromEcho = append(fromEcho, r.Method+" "+p)
	}
	for path, item := range doc.Paths {
		for method, operation := range item {
			fromDoc = append(fromDoc, strings.ToUpper(method)+" "+path)
			if _, ok := operation["responses"]; !ok {
				t.Errorf("%s %s has no responses", method, path)
			}
			if s, _ := operation["summary"].(string); s == "" {
				t.Errorf("%s %s has no summary", method, path)
			}
		}
	}
	sort.Strings(fromEcho)
	sort.Strings(fromDoc)
	if strings.Join(fromEcho, "\n") != strings.Join(fromDoc, "\n") {
		t.Fatalf("routes and document differ:\necho:\n%s\n\ndocument:\n%s", strings.Join(fromEcho, "\n"), strings.Join(fromDoc, "\n"))
	}
	if len(fromEcho) < 20 {
		t.Errorf("only %d routes", len(fromEcho))
	}
	// Spot checks: security per route, request schemas and their references resolve.
	if sec, ok := doc.Paths["/healthz"]["get"]["security"].([]any); !ok || len(sec) != 0 {
		t.Errorf("/healthz should have empty security, got %v", doc.Paths["/healthz"]["get"]["security"])
	}
	post := doc.Paths["/v1/experiments"]["post"]
	if _, ok := post["requestBody"]; !ok {
		t.Error("POST /v1/experiments has no requestBody")
	}
	roles, _ := doc.Paths["/v1/assign"]["post"]["x-lift-roles"].([]any)
	if len(roles) != 2 || roles[0] != "analyst" || roles[1] != "ingest" {
		t.Errorf("assign roles %v, want analyst and ingest", roles)
	}
	raw, _ := json.Marshal(doc)
	for _, ref := range strings.Split(string(raw), `"$ref":"#/components/schemas/`)[1:] {
		name := ref[:strings.IndexByte(ref, '"')]
		if _, ok := doc.Comps.Schemas[name]; !ok {
			t.Errorf("dangling $ref %s", name)
		}
	}
}

func TestRequestTimeoutAndPanic(t *testing.T) {
	ts := newTestServer(t, func(o *Options) { o.RequestTimeout = time.Nanosecond })
	status, b := ts.do("GET", "/v1/experiments", ts.admin, nil)
	if status != http.StatusServiceUnavailable || errorOf(t, b).Code != "unavailable" {
		t.Fatalf("a request past its deadline: %d %s, want 503 unavailable", status, b)
	}

	ts = newTestServer(t)
	ts.srv.echo.GET("/boom", func(echo.Context) error { panic("boom") })
	status, b = ts.do("GET", "/boom", "", nil)
	e := errorOf(t, b)
	if status != http.StatusInternalServerError || e.Code != "internal" || strings.Contains(e.Message, "boom") {
		t.Fatalf("panic: %d %+v, want 500 internal without the panic's details", status, e)
	}
	ts.must(http.StatusOK, "GET", "/healthz", nil, nil) // the server lives on
}
