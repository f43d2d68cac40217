package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/liftlab/lift/experiment"
)

func TestAuth(t *testing.T) {
	ts := newTestServer(t)
	ts.setupRunning()
	analyst := ts.key("analyst", experiment.RoleAnalyst)
	viewer := ts.key("exec-page", experiment.RoleViewer)
	ingest := ts.key("svc", experiment.RoleIngest)

	newExp := map[string]any{"key": "x", "variants": twoArms}
	cases := []struct {
		name         string
		key          string
		method, path string
		body         any
		status       int
	}{
		{"no key", "", "GET", "/v1/experiments", nil, 401},
		{"unknown key", "lift_NOPENOPENOPENOPENOPENOPENOPENOPE", "GET", "/v1/experiments", nil, 401},
		{"not bearer", "", "GET", "/v1/experiments", nil, 401}, // Basic auth below
		{"analyst reads", analyst, "GET", "/v1/experiments", nil, 200},
		{"analyst reads audit", analyst, "GET", "/v1/audit", nil, 200},
		{"analyst may not change", analyst, "POST", "/v1/experiments", newExp, 403},
		{"analyst may not manage keys", analyst, "GET", "/v1/keys", nil, 403},
		{"analyst may assign", analyst, "GET", "/v1/assign?experiment=checkout&unit=u1", nil, 200},
		{"analyst may not expose", analyst, "GET", "/v1/assign?experiment=checkout&unit=u1&expose=true", nil, 403},
		{"analyst may not expose a batch", analyst, "POST", "/v1/assign", map[string]any{"experiment": "checkout", "units": []string{"u1"}, "expose": true}, 403},
		{"ingest exposes", ingest, "GET", "/v1/assign?experiment=checkout&unit=u1&expose=true", nil, 200},
		{"ingest assigns", ingest, "POST", "/v1/assign", map[string]any{"experiment": "checkout", "units": []string{"u1"}}, 200},
		{"ingest may not read the registry", ingest, "GET", "/v1/experiments", nil, 403},
		{"ingest may not register", ingest, "POST", "/v1/experiments", newExp, 403},
		{"viewer may not read the registry", viewer, "GET", "/v1/experiments/checkout", nil, 403},
		{"viewer may not assign", viewer, "GET", "/v1/assign?experiment=checkout&unit=u1", nil, 403},
		{"viewer may not log exposures", viewer, "POST", "/v1/exposures", map[string]any{"exposures": []any{}}, 403},
		{"admin does all", ts.admin, "POST", "/v1/exposures", map[string]any{"exposures": []any{}}, 200},
		{"health is public", "", "GET", "/healthz", nil, 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var status int
			var b []byte
			if c.name == "not bearer" {
				resp := ts.request(c.method, c.path, "", nil, http.Header{"Authorization": {"Basic " + ts.admin}})
				resp.Body.Close()
				status = resp.StatusCode
			} else {
				status, b = ts.do(c.method, c.path, c.key, c.body)
			}
			if status != c.status {
				t.Fatalf("status %d, want %d; %s", status, c.status, b)
			}
			if status == 403 {
				if e := errorOf(t, b); e.Code != "forbidden" || !strings.Contains(e.Message, "role") {
					t.Errorf("403 body %+v should name the role", e)
				}
			}
		})
	}
	resp := ts.request("GET", "/v1/experiments", "", nil, nil)
	resp.Body.Close()
	if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
		t.Errorf("401 without a Bearer WWW-Authenticate header (got %q)", got)
	}
}

func TestKeys(t *testing.T) {
	ts := newTestServer(t)
	var created createdKey
	ts.must(http.StatusCreated, "POST", "/v1/keys", map[string]any{"name": "svc", "role": "ingest"}, &created)
	if !strings.HasPrefix(created.Secret, "lift_") || created.ID == "" || created.Role != experiment.RoleIngest {
		t.Fatalf("created key %+v", created)
	}
	if !strings.HasPrefix(created.Secret, created.Prefix) {
		t.Errorf("prefix %q is not the start of the secret", created.Prefix)
	}
	// The list never shows secrets.
	status, b := ts.do("GET", "/v1/keys", ts.admin, nil)
	if status != 200 || strings.Contains(string(b), created.Secret) || strings.Contains(string(b), `"secret"`) {
		t.Fatalf("key list %d leaks the secret: %s", status, b)
	}
	var list keyList
	if err := json.Unmarshal(b, &list); err != nil || len(list.Keys) != 2 {
		t.Fatalf("key list: %s (%v), want the bootstrap key and svc", b, err)
	}
	ts.mustAs(created.Secret, http.StatusOK, "POST", "/v1/exposures", map[string]any{"exposures": []any{}}, nil)
	ts.must(http.StatusNoContent, "DELETE", "/v1/keys/"+created.ID, nil, nil)
	ts.mustAs(created.Secret, http.StatusUnauthorized, "POST", "/v1/exposures", map[string]any{"exposures": []any{}}, nil)
	ts.must(http.StatusNotFound, "DELETE", "/v1/keys/key_nope", nil, nil)
}
