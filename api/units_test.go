package api

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/store"
)

// TestUnitRights: consent through PUT (a version per change, the history read
// back), export, reset, erasure (idempotent, audited under the pseudonym), the
// roles, and bad input naming the field with nothing written.
func TestUnitRights(t *testing.T) {
	ts := newTestServer(t)
	ts.setupRunning()
	ingest := ts.key("app", experiment.RoleIngest)
	analyst := ts.key("ana", experiment.RoleAnalyst)
	ts.mustAs(ingest, http.StatusOK, "POST", "/v1/events", map[string]any{"events": []map[string]any{
		{"event_id": "e1", "unit": "u 1", "type": "view", "ts": "2026-03-01T10:00:00Z", "value": 1, "properties": map[string]any{"item": "i1"}},
	}}, nil)
	ts.mustAs(ingest, http.StatusOK, "POST", "/v1/exposures", map[string]any{"exposures": []map[string]any{
		{"experiment": "checkout", "unit": "u 1", "variant": "control", "ts": time.Now().UTC().Format(time.RFC3339Nano)},
	}}, nil)

	var ch store.ConsentChange
	ts.mustAs(ingest, http.StatusOK, "PUT", "/v1/units/u%201/consent", map[string]any{
		"tier": 2, "purposes": []string{"personalization"}, "opt_out_categories": []string{"health"}, "channels": []string{"web"},
		"policy_id": "privacy", "policy_version": "2026-01"}, &ch)
	if ch.Consent.Unit != "u 1" || ch.Consent.Version != 1 || ch.Consent.Tier != 2 {
		t.Errorf("consent %+v", ch.Consent)
	}
	ts.mustAs(ingest, http.StatusOK, "PUT", "/v1/units/u%201/consent", map[string]any{"tier": 1, "policy_id": "privacy", "policy_version": "2026-02"}, &ch)
	if ch.Consent.Version != 2 || ch.Purged.ItemHistory != 1 {
		t.Errorf("withdrawal %+v, want version 2 purging 1 item event", ch)
	}
	var h consentHistory
	ts.mustAs(analyst, http.StatusOK, "GET", "/v1/units/u%201/consent", nil, &h)
	if len(h.History) != 2 || h.History[0].PolicyVersion != "2026-01" || h.History[1].Tier != 1 {
		t.Errorf("history %+v", h)
	}

	for _, tc := range []struct {
		name, body, field string
	}{
		{"tier out of range", `{"tier": 7, "policy_id": "p", "policy_version": "1"}`, "tier"},
		{"unknown purpose", `{"tier": 1, "purposes": ["resale"], "policy_id": "p", "policy_version": "1"}`, "purposes[0]"},
		{"no policy", `{"tier": 1, "policy_version": "1"}`, "policy_id"},
		{"unknown field", `{"tier": 1, "policy_id": "p", "policy_version": "1", "price": 3}`, "price"},
	} {
		status, b := ts.do("PUT", "/v1/units/u%201/consent", ts.admin, tc.body)
		if e := errorOf(t, b); status != http.StatusBadRequest || !strings.Contains(e.Message, tc.field) {
			t.Errorf("%s: %d %s, want 400 naming %s", tc.name, status, e.Message, tc.field)
		}
	}
	ts.mustAs(analyst, http.StatusOK, "GET", "/v1/units/u%201/consent", nil, &h)
	if len(h.History) != 2 {
		t.Errorf("%d versions after bad requests, want 2", len(h.History))
	}

	// Export and erasure are the admin's.
	if status, _ := ts.do("GET", "/v1/units/u%201/data", analyst, nil); status != http.StatusForbidden {
		t.Errorf("analyst export: %d, want 403", status)
	}
	if status, _ := ts.do("DELETE", "/v1/units/u%201", ingest, nil); status != http.StatusForbidden {
		t.Errorf("ingest erasure: %d, want 403", status)
	}
	var data store.UnitData
	ts.must(http.StatusOK, "GET", "/v1/units/u%201/data", nil, &data)
	if data.Unit != "u 1" || len(data.Exposures) != 1 || len(data.Events) != 1 || len(data.Consent) != 2 || data.ResetAt == nil {
		t.Errorf("export %+v", data)
	}
	var r store.ProfileReset
	ts.mustAs(ingest, http.StatusOK, "POST", "/v1/units/u%201/reset", nil, &r)
	if r.Unit != "u 1" || r.Removed.ItemHistory != 0 {
		t.Errorf("reset %+v, want nothing left to remove", r)
	}

	var e1, e2 store.Erasure
	ts.must(http.StatusOK, "DELETE", "/v1/units/u%201", nil, &e1)
	ts.must(http.StatusOK, "DELETE", "/v1/units/u%201", nil, &e2)
	if e1.Already || e1.Removed.Events != 1 || e1.Removed.Exposures != 1 || e1.Removed.Consents != 2 || !e2.Already || e2.Pseudonym != e1.Pseudonym || e2.Removed != (store.Purged{}) {
		t.Errorf("erasures %+v then %+v", e1, e2)
	}
	ts.must(http.StatusOK, "GET", "/v1/units/u%201/data", nil, &data)
	if len(data.Exposures)+len(data.Events)+len(data.Decisions)+len(data.Consent) != 0 || len(data.Attributes) != 0 {
		t.Errorf("export after erasure %+v, want nothing", data)
	}
	var audit struct {
		Entries []experiment.AuditEntry `json:"entries"`
	}
	ts.must(http.StatusOK, "GET", "/v1/audit?entity=unit&key="+e1.Pseudonym, nil, &audit)
	actions := map[string]int{}
	for _, a := range audit.Entries {
		actions[a.Action]++
	}
	if actions["unit.erase"] != 2 || actions["unit.consent"] != 2 || actions["unit.reset"] != 1 {
		t.Errorf("audit under the pseudonym: %v", actions)
	}
	if status, b := ts.do("GET", "/v1/units/u%00x/data", ts.admin, nil); status != http.StatusBadRequest || !strings.Contains(errorOf(t, b).Message, "unit") {
		t.Errorf("NUL in the unit: %d %s, want 400 naming unit", status, b)
	}
}
