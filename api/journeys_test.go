package api

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/journey"
	"github.com/liftlab/lift/scorer"
	"github.com/liftlab/lift/store"
)

// writeTestModel writes a seeded 100-item model "shop" and its card to dir.
func writeTestModel(t *testing.T, dir string) {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 4))
	m := &scorer.Model{Dim: 4, Meta: scorer.Metadata{Name: "shop", Version: "2026-11-20"}}
	for i := range 100 {
		m.ItemIDs = append(m.ItemIDs, "item-"+strconv.Itoa(i))
		for range 4 {
			m.Items = append(m.Items, float32(rng.NormFloat64()))
		}
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "shop.safetensors")
	ctx := context.Background()
	if err := m.Save(ctx, path); err != nil {
		t.Fatal(err)
	}
	card := &scorer.Card{Name: "shop", Version: "2026-11-20", Algorithm: "test", IntendedUse: "ordering a home feed",
		NotFor: []string{scorer.NotForPricing}, ProfileReset: scorer.DefaultProfileReset}
	if err := card.Save(ctx, path); err != nil {
		t.Fatal(err)
	}
}

// newJourneyServer is a test server with a Decider over the models of a fresh folder.
func newJourneyServer(t *testing.T) *tserver {
	t.Helper()
	ts, _ := newJourneyServerIn(t)
	return ts
}

// newJourneyServerIn is newJourneyServer, and the models' folder.
func newJourneyServerIn(t *testing.T) (*tserver, string) {
	t.Helper()
	dir := t.TempDir()
	writeTestModel(t, dir)
	ms, err := journey.LoadModels(context.Background(), dir, journey.LoadOptions{Kind: scorer.KindCPU})
	if err != nil {
		t.Fatal(err)
	}
	var dec *journey.Decider
	ts := newTestServer(t, func(o *Options) {
		dec = journey.New(o.Store, ms, journey.Options{Logger: slog.New(slog.DiscardHandler)})
		o.Journeys = dec
	})
	t.Cleanup(func() { dec.Close(); ms.Close() })
	ts.setupRunning()
	return ts, dir
}

var homeJourney = map[string]any{
	"key": "home", "experiment": "checkout", "model": "shop", "k": 3,
	"control_policy": map[string]any{"kind": "fixed", "items": []string{"item-1", "item-2", "item-3"}},
}

func TestJourneyRegistry(t *testing.T) {
	ts := newJourneyServer(t)
	ingest := ts.key("collector", experiment.RoleIngest)
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for k, v := range homeJourney {
			m[k] = v
		}
		m[k] = v
		return m
	}
	bad := []struct {
		name   string
		key    string
		body   any
		status int
		msg    string // the message must contain this
	}{
		{"price field", ts.admin, with("price", 9.99), 400, "never set or vary prices"},
		{"unknown experiment", ts.admin, with("experiment", "nope"), 400, "experiment"},
		{"holdout not the experiment's", ts.admin, with("holdout", "other"), 400, "holdout"},
		{"unknown control variant", ts.admin, with("control", "blue"), 400, "control"},
		{"k too large", ts.admin, with("k", 5000), 400, "k"},
		{"bad control policy", ts.admin, with("control_policy", map[string]any{"kind": "random"}), 400, "control_policy.kind"},
		{"negative budget", ts.admin, with("latency_budget", "-5ms"), 400, "latency_budget"},
		{"model not loaded", ts.admin, with("model", "shoes"), 400, `model: model "shoes" is not loaded (loaded: shop)`},
		{"epsilon above 1", ts.admin, with("exploration", map[string]any{"kind": "epsilon_greedy", "epsilon": 2}), 400, "exploration.epsilon"},
		{"thompson budget above 1", ts.admin, with("exploration", map[string]any{"kind": "thompson", "budget": 1.5}), 400, "exploration.budget"},
		{"thompson bad reward event", ts.admin, with("exploration", map[string]any{"kind": "thompson", "reward_event": "click\n"}), 400, "exploration.reward_event"},
		{"budget under epsilon_greedy", ts.admin, with("exploration", map[string]any{"kind": "epsilon_greedy", "budget": 0.2}), 400, "exploration.budget"},
		{"ingest key may not register", ingest, homeJourney, 403, "admin"},
		{"unknown diversity", ts.admin, with("diversity", map[string]any{"kind": "shuffle"}), 400, "diversity.kind"},
		{"mmr lambda above 1", ts.admin, with("diversity", map[string]any{"kind": "mmr", "lambda": 1.5}), 400, "diversity.lambda"},
		{"quota without a max", ts.admin, with("diversity", map[string]any{"kind": "category_quota"}), 400, "diversity.max_per_category"},
		{"fewer candidates than k", ts.admin, with("diversity", map[string]any{"kind": "mmr", "candidates": 2}), 400, "diversity.candidates"},
		{"cap of 0", ts.admin, with("frequency_cap", map[string]any{"max": 0, "window": "24h"}), 400, "frequency_cap.max"},
		{"cap window of 10s", ts.admin, with("frequency_cap", map[string]any{"max": 3, "window": "10s"}), 400, "frequency_cap.window"},
		{"quiet hours 25:00", ts.admin, with("quiet_hours", map[string]any{"start": "25:00", "end": "07:00"}), 400, "quiet_hours.start"},
		{"quiet hours on Mars", ts.admin, with("quiet_hours", map[string]any{"start": "22:00", "end": "07:00", "time_zone": "Mars/Olympus"}), 400, "quiet_hours.time_zone"},
		{"history at tier 1", ts.admin, with("feature_sets", map[string]any{"1": []string{"stored_history"}}), 400, "feature_sets.1[0]"},
		{"unknown signal", ts.admin, with("feature_sets", map[string]any{"3": []string{"session_items", "location"}}), 400, "feature_sets.3[1]"},
		{"tier 4", ts.admin, with("feature_sets", map[string]any{"4": []string{"session_items"}}), 400, "feature_sets.4"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			status, b := ts.do("POST", "/v1/journeys", tc.key, tc.body)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, b)
			}
			if e := errorOf(t, b); !strings.Contains(e.Message, tc.msg) {
				t.Errorf("message %q does not name %q", e.Message, tc.msg)
			}
		})
	}
	var j experiment.Journey
	ts.must(http.StatusCreated, "POST", "/v1/journeys", homeJourney, &j)
	// Defaults: control = first variant, holdout = the experiment's, 120 ms, ε = 0.05, tier 2.
	if j.Control != "control" || j.Holdout != "global" || time.Duration(j.LatencyBudget) != 120*time.Millisecond ||
		j.Exploration.Kind != "epsilon_greedy" || j.Exploration.Epsilon != 0.05 || j.ConsentTier != 2 ||
		j.Diversity.Kind != "none" || !reflect.DeepEqual(j.FeatureSets, experiment.DefaultFeatureSets()) || j.FrequencyCap != nil || j.QuietHours != nil {
		t.Errorf("defaults not applied: %+v", j)
	}
	ts.must(http.StatusConflict, "POST", "/v1/journeys", homeJourney, nil)
	var got experiment.Journey
	ts.must(http.StatusOK, "GET", "/v1/journeys/home", nil, &got)
	if got.Key != "home" || got.Model != "shop" {
		t.Errorf("got %+v", got)
	}
	var list journeyList
	ts.must(http.StatusOK, "GET", "/v1/journeys", nil, &list)
	if len(list.Journeys) != 1 {
		t.Errorf("list %+v", list)
	}
	ts.must(http.StatusNotFound, "GET", "/v1/journeys/nope", nil, nil)
	audit, err := ts.db.Audit(context.Background(), "journey", "home", 10)
	if err != nil || len(audit) != 1 || audit[0].Action != "journey.create" {
		t.Errorf("audit %+v, %v", audit, err)
	}
}

func TestJourneyDecideAPI(t *testing.T) {
	ts := newJourneyServer(t)
	ts.must(http.StatusCreated, "POST", "/v1/journeys", homeJourney, nil)
	ingest := ts.key("collector", experiment.RoleIngest)
	analyst := ts.key("analyst", experiment.RoleAnalyst)
	seen := map[string]bool{}
	policies := map[string]int{}
	for i := range 60 {
		var d journey.Decision
		ts.mustAs(ingest, http.StatusOK, "POST", "/v1/journeys/home/decide", map[string]any{
			"unit": "u-" + strconv.Itoa(i), "context": map[string]any{"recent_items": []string{"item-5", "item-9"}, "consent_tier": 2}}, &d)
		if seen[d.ID] {
			t.Fatalf("decision id %s repeated", d.ID)
		}
		seen[d.ID] = true
		policies[d.Policy]++
		if len(d.Items) != 3 {
			t.Errorf("decision %+v: want 3 items", d)
		}
		if d.Policy == experiment.PolicyPersonalized && policies[d.Policy] == 1 {
			b, _ := json.Marshal(d)
			t.Logf("first personalized decision (unit u-%d): %s", i, b)
		}
		if d.Policy == experiment.PolicyPersonalized && (d.ModelVersion != "2026-11-20" || d.Variant == nil || *d.Variant != "treatment") {
			t.Errorf("personalized decision %+v", d)
		}
	}
	if policies[experiment.PolicyPersonalized] == 0 || policies[experiment.PolicyControl] == 0 {
		t.Errorf("policies %v: want both arms among 60 units", policies)
	}
	var d journey.Decision
	ts.mustAs(ingest, http.StatusOK, "POST", "/v1/journeys/home/decide", map[string]any{"unit": "u-1", "context": map[string]any{"consent_tier": 1}}, &d)
	if d.Policy != experiment.PolicyIneligible || d.Variant != nil {
		t.Errorf("functional consent: %+v, want ineligible without a variant", d)
	}
	for _, tc := range []struct {
		name, path, key string
		body            any
		status          int
	}{
		{"unknown journey", "/v1/journeys/nope/decide", ingest, map[string]any{"unit": "u"}, 404},
		{"analyst may not decide", "/v1/journeys/home/decide", analyst, map[string]any{"unit": "u"}, 403},
		{"unknown field", "/v1/journeys/home/decide", ingest, map[string]any{"unit": "u", "price": 3}, 400},
		{"empty unit", "/v1/journeys/home/decide", ingest, map[string]any{"unit": ""}, 400},
	} {
		if status, b := ts.do("POST", tc.path, tc.key, tc.body); status != tc.status {
			t.Errorf("%s: status %d, want %d: %s", tc.name, status, tc.status, b)
		}
	}
	// The guardrails are exported to Prometheus and served live.
	status, b := ts.do("GET", "/metrics", analyst, nil)
	if status != 200 || !strings.Contains(string(b), `lift_journey_decisions_total{journey="home",policy="personalized"}`) ||
		!strings.Contains(string(b), `lift_journey_decision_latency_seconds{journey="home",quantile="0.99"}`) ||
		!strings.Contains(string(b), `lift_journey_item_exposure_gini{journey="home"}`) {
		t.Errorf("/metrics lacks the journey guardrails")
	}
	var g journey.Guardrails
	ts.mustAs(analyst, http.StatusOK, "GET", "/v1/journeys/home/guardrails", nil, &g)
	if g.Decisions[experiment.PolicyIneligible] != 1 || g.IneligibleShare != 1.0/61 {
		t.Errorf("guardrails %+v: want 1 ineligible of 61 decisions", g)
	}
	var cmp journey.Comparison
	ts.mustAs(analyst, http.StatusOK, "GET", "/v1/journeys/home/comparison", nil, &cmp)
	if cmp.Summary.Decisions != 61 || cmp.Summary.Ineligible != 1 {
		t.Errorf("comparison summary %+v: want 61 decisions, 1 ineligible", cmp.Summary)
	}
}

func TestModelCardAPI(t *testing.T) {
	ts := newJourneyServer(t)
	analyst := ts.key("analyst", experiment.RoleAnalyst)
	var card scorer.Card
	ts.mustAs(analyst, http.StatusOK, "GET", "/v1/models/shop/card", nil, &card)
	if card.Name != "shop" || len(card.NotFor) == 0 || card.NotFor[0] != scorer.NotForPricing {
		t.Errorf("card %+v", card)
	}
	resp := ts.request("GET", "/v1/models/shop/card", analyst, nil, http.Header{"Accept": {"text/markdown"}})
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/markdown") || !strings.Contains(string(b), "pricing") {
		t.Errorf("markdown card: %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	ts.mustAs(analyst, http.StatusNotFound, "GET", "/v1/models/nope/card", nil, nil)
	var list modelList
	ts.mustAs(analyst, http.StatusOK, "GET", "/v1/models", nil, &list)
	if len(list.Models) != 1 || list.Models[0].Items != 100 || !list.Models[0].HasCard {
		t.Errorf("models %+v", list)
	}
}

func TestJourneysWithoutModels(t *testing.T) {
	ts := newTestServer(t)
	ts.setupRunning()
	ts.must(http.StatusCreated, "POST", "/v1/journeys", homeJourney, nil)
	status, b := ts.do("POST", "/v1/journeys/home/decide", ts.admin, map[string]any{"unit": "u"})
	if status != http.StatusServiceUnavailable || !strings.Contains(errorOf(t, b).Message, "--models") {
		t.Errorf("decide without models: %d %s", status, b)
	}
}

// TestDecisionProvenance: GET /v1/journeys/KEY/decisions/ID answers why a unit saw
// its items: the consent (stored, with its policy version), the signals and the
// session items the model used, the model version, the exploration and the
// journey's rules; erasure keeps the items and drops the provenance.
func TestDecisionProvenance(t *testing.T) {
	ts := newJourneyServer(t)
	ts.must(http.StatusCreated, "POST", "/v1/journeys", homeJourney, nil)
	ingest := ts.key("collector", experiment.RoleIngest)
	analyst := ts.key("analyst", experiment.RoleAnalyst)
	var d journey.Decision
	unit := ""
	for i := range 60 {
		unit = "u-" + strconv.Itoa(i)
		ts.mustAs(ingest, http.StatusOK, "PUT", "/v1/units/"+unit+"/consent", map[string]any{
			"tier": 2, "purposes": []string{"personalization"}, "policy_id": "privacy", "policy_version": "2026-07"}, nil)
		ts.mustAs(ingest, http.StatusOK, "POST", "/v1/journeys/home/decide", map[string]any{
			"unit": unit, "context": map[string]any{"recent_items": []string{"item-5", "not-in-catalog"}}}, &d)
		if d.Policy == experiment.PolicyPersonalized {
			break
		}
	}
	if d.Policy != experiment.PolicyPersonalized {
		t.Fatal("no personalized decision among 60 units")
	}
	var rec store.DecisionRecord
	ts.mustAs(analyst, http.StatusOK, "GET", "/v1/journeys/home/decisions/"+d.ID, nil, &rec)
	var p journey.Provenance
	if err := json.Unmarshal(rec.Provenance, &p); err != nil {
		t.Fatalf("provenance %s: %v", rec.Provenance, err)
	}
	if rec.Unit != unit || rec.Policy != experiment.PolicyPersonalized || p.Consent.Tier != 2 || p.Consent.Source != "stored" ||
		p.Consent.PolicyVersion != "2026-07" || !slices.Equal(p.Consent.Signals, []string{journey.SignalSessionItems, journey.SignalStoredHistory}) ||
		!slices.Equal(p.SessionItems, []string{"item-5"}) || p.Model != "shop" || p.ModelVersion != d.ModelVersion ||
		p.Exploration.Kind != experiment.ExploreEpsilonGreedy || p.Rules.ConsentTier != 2 || p.Rules.K != 3 || p.Rules.Experiment == "" {
		t.Errorf("decision %+v, provenance %s", rec, rec.Provenance)
	}
	var items []journey.Item
	if err := json.Unmarshal(rec.Items, &items); err != nil || len(items) != 3 || items[0].Reason == "" {
		t.Errorf("items %s: want 3, each with its reason", rec.Items)
	}
	ts.must(http.StatusNotFound, "GET", "/v1/journeys/home/decisions/dec_nope", nil, nil)
	ts.must(http.StatusOK, "DELETE", "/v1/units/"+unit, nil, nil)
	var after store.DecisionRecord
	ts.mustAs(analyst, http.StatusOK, "GET", "/v1/journeys/home/decisions/"+d.ID, nil, &after)
	if after.Provenance != nil || !strings.HasPrefix(after.Unit, "erased_") || string(after.Items) != string(rec.Items) {
		t.Errorf("after erasure %+v", after)
	}
}

// TestModelReloadAPI: POST /v1/models/NAME/reload swaps in the file's new version
// (admin only); a broken file is a 400 naming the file and leaves the old
// version serving; a model marked not deployable is a 409 unless forced.
func TestModelReloadAPI(t *testing.T) {
	ts, dir := newJourneyServerIn(t)
	ctx := context.Background()
	path := filepath.Join(dir, "shop.safetensors")
	analyst := ts.key("analyst", experiment.RoleAnalyst)
	version := func() string {
		var list modelList
		ts.mustAs(analyst, http.StatusOK, "GET", "/v1/models", nil, &list)
		return list.Models[0].Version
	}
	ts.mustAs(analyst, http.StatusForbidden, "POST", "/v1/models/shop/reload", nil, nil)
	m, err := scorer.Load(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	m.Meta.Version = "2026-11-21"
	if err := m.Save(ctx, path); err != nil {
		t.Fatal(err)
	}
	var r modelReload
	ts.must(http.StatusOK, "POST", "/v1/models/shop/reload", nil, &r)
	if r.Model.Version != "2026-11-21" || r.PreviousVersion != "2026-11-20" || !r.Model.HasCard || version() != "2026-11-21" {
		t.Errorf("reload %+v, serving %s", r, version())
	}
	good, _ := os.ReadFile(path)
	if err := os.WriteFile(path, good[:len(good)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	status, b := ts.do("POST", "/v1/models/shop/reload", ts.admin, nil)
	if e := errorOf(t, b); status != http.StatusBadRequest || !strings.Contains(e.Message, path) {
		t.Errorf("broken file: %d %s; want 400 naming %s", status, b, path)
	}
	if v := version(); v != "2026-11-21" {
		t.Errorf("after a broken file the server serves %s, want the old 2026-11-21", v)
	}
	m.Meta.Version = "2026-11-22"
	m.Meta.Extra = map[string]string{scorer.MetaNotDeployable: "membership-inference AUC 0.93 is above the gate's 0.60"}
	if err := m.Save(ctx, path); err != nil {
		t.Fatal(err)
	}
	status, b = ts.do("POST", "/v1/models/shop/reload", ts.admin, nil)
	if e := errorOf(t, b); status != http.StatusConflict || !strings.Contains(e.Message, "not deployable") || !strings.Contains(e.Message, "0.93") {
		t.Errorf("undeployable: %d %s; want 409 saying why", status, b)
	}
	status, b = ts.do("POST", "/v1/models/shop/reload?force=maybe", ts.admin, nil)
	if e := errorOf(t, b); status != http.StatusBadRequest || !strings.HasPrefix(e.Message, "force:") {
		t.Errorf("bad force: %d %s", status, b)
	}
	ts.must(http.StatusOK, "POST", "/v1/models/shop/reload?force=true", nil, &r)
	if r.Model.Version != "2026-11-22" || r.Model.NotDeployable == "" {
		t.Errorf("forced reload %+v", r)
	}
	ts.mustAs(ts.admin, http.StatusNotFound, "POST", "/v1/models/shoes/reload", nil, nil)
	// Every attempt that reached the models is in the audit log, with who asked.
	ops := ts.key("ops", experiment.RoleAdmin)
	ts.mustAs(ops, http.StatusOK, "POST", "/v1/models/shop/reload?force=true", nil, &r)
	var audit auditList
	ts.mustAs(analyst, http.StatusOK, "GET", "/v1/audit?entity=model&key=shop", nil, &audit)
	want := []struct{ action, old, new, result, code string }{ // newest first
		{"model.reload", "2026-11-22", "2026-11-22", "loaded", ""},
		{"model.reload", "2026-11-21", "2026-11-22", "loaded", ""},
		{"model.reload_refused", "2026-11-21", "2026-11-22", "refused", "conflict"},
		{"model.reload_refused", "2026-11-21", "", "refused", "invalid"},
		{"model.reload", "2026-11-20", "2026-11-21", "loaded", ""},
	}
	if len(audit.Entries) != len(want) {
		t.Fatalf("audit of model shop: %d entries, want %d: %+v", len(audit.Entries), len(want), audit.Entries)
	}
	for k, w := range want {
		e := audit.Entries[k]
		var rec journey.ReloadRecord
		if err := json.Unmarshal(e.After, &rec); err != nil {
			t.Fatal(err)
		}
		if actor := map[bool]string{true: "ops", false: e.Actor}[k == 0]; e.Action != w.action || e.Actor != actor || rec.Trigger != journey.TriggerAPI ||
			rec.OldVersion != w.old || rec.NewVersion != w.new || rec.Result != w.result || rec.Code != w.code {
			t.Errorf("audit entry %d: %+v %s, want %+v", k, e, e.After, w)
		}
	}
	if audit.Entries[1].Actor == "ops" || audit.Entries[1].Actor == "" {
		t.Errorf("the earlier reloads were by the bootstrap admin, got actor %q", audit.Entries[1].Actor)
	}
	ts.mustAs(analyst, http.StatusOK, "GET", "/v1/audit?entity=model&key=shoes", nil, &audit)
	if len(audit.Entries) != 1 || audit.Entries[0].Action != "model.reload_refused" || !strings.Contains(string(audit.Entries[0].After), `"code":"not_found"`) {
		t.Errorf("audit of the reload of an unknown model: %+v", audit.Entries)
	}
}
