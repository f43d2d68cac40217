package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/analysis"
	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/results"
)

func consent(unit string, tier int, purposes ...string) experiment.Consent {
	return experiment.Consent{Unit: unit, Tier: tier, Purposes: purposes, PolicyID: "privacy", PolicyVersion: "2026-01"}
}

func itemEvent(id, unit, item string, ts time.Time) experiment.Event {
	return experiment.Event{EventID: id, Unit: unit, Type: "view", TS: ts, Value: 1, Properties: json.RawMessage(`{"item": "` + item + `", "page": "home"}`)}
}

// TestConsentHistoryAndWithdrawal: every change is a new version (history kept),
// each with an audit entry; lowering the tier purges, in the same transaction,
// the attributes (below 3) and the item history (below 2) of that unit only.
func TestConsentHistoryAndWithdrawal(t *testing.T) {
	c := newClock()
	db, _ := openTest(t, c)
	ctx := context.Background()
	if _, _, err := db.IngestEvents(ctx, []experiment.Event{
		itemEvent("e1", "alice", "i1", t0), itemEvent("e2", "alice", "i2", t0), itemEvent("e3", "bob", "i1", t0),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpsertUnitAttributes(ctx, []UnitAttributes{{Unit: "alice", Attributes: map[string]any{"country": "DE"}}, {Unit: "bob", Attributes: map[string]any{"country": "FR"}}}); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		c      experiment.Consent
		purged Purged
	}{
		{consent("alice", 3, "personalization", "analytics"), Purged{}},
		{consent("alice", 2, "personalization"), Purged{Attributes: 1}},
		{consent("alice", 1), Purged{ItemHistory: 2}},
	}
	for i, s := range steps {
		c.Advance(time.Minute)
		ch, err := db.RecordConsent(ctx, "admin", s.c)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if ch.Consent.Version != i+1 || ch.Purged != s.purged || !ch.Consent.RecordedAt.Equal(c.Now()) {
			t.Errorf("step %d: version %d, purged %+v, recorded %v; want %d, %+v, %v", i, ch.Consent.Version, ch.Purged, ch.Consent.RecordedAt, i+1, s.purged, c.Now())
		}
	}
	h, err := db.ConsentHistory(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 3 || h[0].Tier != 3 || h[2].Tier != 1 || !reflect.DeepEqual(h[0].Purposes, []string{"personalization", "analytics"}) {
		t.Errorf("history %+v, want tiers 3, 2, 1", h)
	}
	st, err := db.UnitState(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if st.Consent == nil || st.Consent.Version != 3 || !st.ResetAt.Equal(c.Now()) || st.Erased {
		t.Errorf("state %+v, want version 3, reset at %v", st, c.Now())
	}
	// The withdrawn signals are gone for alice, kept for bob; the events stay as outcomes.
	if n := count(t, db, `SELECT count(*) FROM events WHERE unit = 'alice' AND json_extract_string(properties, '$.item') IS NOT NULL`); n != 0 {
		t.Errorf("alice keeps %d item events", n)
	}
	if n := count(t, db, `SELECT count(*) FROM events WHERE unit = 'alice' AND json_extract_string(properties, '$.page') = 'home'`); n != 2 {
		t.Errorf("alice has %d events with their other properties, want 2", n)
	}
	if n := count(t, db, `SELECT count(*) FROM events WHERE unit = 'bob' AND json_extract_string(properties, '$.item') = 'i1'`); n != 1 {
		t.Errorf("bob has %d item events, want 1", n)
	}
	attrs, _ := db.GetUnitAttributes(ctx, []string{"alice", "bob"})
	if _, ok := attrs["alice"]; ok || attrs["bob"]["country"] != "FR" {
		t.Errorf("attributes %v, want bob's only", attrs)
	}
	audit, err := db.Audit(ctx, "unit", "alice", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(audit) != 3 || audit[0].Action != "unit.consent" {
		t.Errorf("audit %+v, want 3 unit.consent entries", audit)
	}

	// Attributes and item events sent after the withdrawal: the sweep removes them.
	if _, _, err := db.IngestEvents(ctx, []experiment.Event{itemEvent("e4", "alice", "i3", t0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpsertUnitAttributes(ctx, []UnitAttributes{{Unit: "alice", Attributes: map[string]any{"city": "Oslo"}}}); err != nil {
		t.Fatal(err)
	}
	p, err := db.PurgeWithdrawn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p != (Purged{Attributes: 1, ItemHistory: 1}) {
		t.Errorf("sweep purged %+v, want 1 attribute row and 1 item event", p)
	}
	if p, _ := db.PurgeWithdrawn(ctx); p != (Purged{}) {
		t.Errorf("second sweep purged %+v, want nothing", p)
	}
}

// TestRecordConsentInvalid: bad input names the field and writes nothing.
func TestRecordConsentInvalid(t *testing.T) {
	db, _ := openTest(t, newClock())
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		edit  func(*experiment.Consent)
		field string
	}{
		{"no unit", func(c *experiment.Consent) { c.Unit = "" }, "unit"},
		{"tier 4", func(c *experiment.Consent) { c.Tier = 4 }, "tier"},
		{"negative tier", func(c *experiment.Consent) { c.Tier = -1 }, "tier"},
		{"unknown purpose", func(c *experiment.Consent) { c.Purposes = []string{"personalization", "resale"} }, "purposes[1]"},
		{"repeated purpose", func(c *experiment.Consent) { c.Purposes = []string{"personalization", "personalization"} }, "purposes[1]"},
		{"tier 2 without the purpose", func(c *experiment.Consent) { c.Purposes = []string{"analytics"} }, "purposes"},
		{"empty category", func(c *experiment.Consent) { c.OptOutCategories = []string{"health", ""} }, "opt_out_categories[1]"},
		{"control character in a channel", func(c *experiment.Consent) { c.Channels = []string{"web\x00"} }, "channels[0]"},
		{"no policy", func(c *experiment.Consent) { c.PolicyID = "" }, "policy_id"},
		{"no policy version", func(c *experiment.Consent) { c.PolicyVersion = "" }, "policy_version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := consent("alice", 2, "personalization")
			tc.edit(&c)
			_, err := db.RecordConsent(ctx, "admin", c)
			var e *experiment.Error
			if !asError(err, &e) || e.Kind != experiment.Invalid || string(e.Field) != tc.field {
				t.Fatalf("err %v, want Invalid naming %s", err, tc.field)
			}
		})
	}
	if n := count(t, db, `SELECT count(*) FROM unit_consent`) + count(t, db, `SELECT count(*) FROM audit WHERE entity = 'unit'`); n != 0 {
		t.Errorf("%d rows written by invalid requests", n)
	}
}

// TestEraseUnit: after DELETE /v1/units/ID the id is in no table of the file (read
// again from disk after closing), its pseudonym keeps its exposures and
// decisions, the experiment's counts are unchanged, and the results equal the
// reference engine's over the same rows less the unit's events. Erasing again
// removes nothing and reports it.
func TestEraseUnit(t *testing.T) {
	c := newClock()
	db, path := openTest(t, c)
	ctx := context.Background()
	ms := testMetrics()
	s := genSynth(rand.New(rand.NewPCG(3, 4)), "checkout", 300, t0)
	e := loadSynth(t, db, "checkout", s, ms)
	// The erased unit: exposed once, with purchases.
	victim := ""
	nx := map[string]int{}
	for _, x := range s.exposures {
		nx[x.Unit]++
	}
	for _, ev := range s.events {
		if ev.Type == "purchase" && nx[ev.Unit] == 1 {
			victim = ev.Unit
			break
		}
	}
	if _, err := db.UpsertUnitAttributes(ctx, []UnitAttributes{{Unit: victim, Attributes: map[string]any{"country": "DE"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.RecordConsent(ctx, "admin", consent(victim, 3, "personalization")); err != nil {
		t.Fatal(err)
	}
	if err := db.LogDecisions(ctx, []Decision{{ID: "dec_1", Journey: "home", Experiment: e.Key, Unit: victim, Policy: "personalized", Items: json.RawMessage(`[{"id":"i1","score":1,"reason":"because you viewed i2"}]`)}}); err != nil {
		t.Fatal(err)
	}
	before, err := svc(db).ExperimentResults(ctx, e.Key, results.Options{})
	if err != nil {
		t.Fatal(err)
	}
	exported, err := db.ExportUnit(ctx, victim)
	if err != nil {
		t.Fatal(err)
	}
	var wantEvents int
	for _, ev := range s.events {
		if ev.Unit == victim {
			wantEvents++
		}
	}
	if len(exported.Exposures) != 1 || len(exported.Events) != wantEvents || len(exported.Decisions) != 1 || exported.Attributes["country"] != "DE" || len(exported.Consent) != 1 {
		t.Errorf("export: %d exposures, %d events (want %d), %d decisions, attributes %v, %d consents", len(exported.Exposures), len(exported.Events), wantEvents, len(exported.Decisions), exported.Attributes, len(exported.Consent))
	}

	c.Advance(time.Hour)
	er, err := db.EraseUnit(ctx, "admin", victim)
	if err != nil {
		t.Fatal(err)
	}
	want := Purged{Events: int64(wantEvents), Attributes: 1, Consents: 1, Exposures: 1, Decisions: 1, AuditEntries: 1}
	if er.Already || er.Removed != want || !strings.HasPrefix(er.Pseudonym, "erased_") || !er.ErasedAt.Equal(c.Now()) {
		t.Errorf("erasure %+v, want removed %+v", er, want)
	}
	ps, _ := db.Pseudonym(ctx, victim)
	if ps != er.Pseudonym {
		t.Errorf("pseudonym %q, erasure said %q", ps, er.Pseudonym)
	}
	st, err := db.UnitState(ctx, victim)
	if err != nil || !st.Erased || st.Consent != nil {
		t.Errorf("state after erasure %+v, %v: want erased, no consent", st, err)
	}
	after, err := svc(db).ExperimentResults(ctx, e.Key, results.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(after.Exposures, before.Exposures) || after.ExcludedMultiple != before.ExcludedMultiple || after.SRM != before.SRM {
		t.Errorf("counts changed: %v %d %+v → %v %d %+v", before.Exposures, before.ExcludedMultiple, before.SRM, after.Exposures, after.ExcludedMultiple, after.SRM)
	}
	// The metrics equal the reference engine's over the rows as they now are:
	// the unit's exposure under its pseudonym, its events gone.
	s2 := &synth{}
	for _, x := range s.exposures {
		if x.Unit == victim {
			x.Unit = ps
		}
		s2.exposures = append(s2.exposures, x)
	}
	for _, ev := range s.events {
		if ev.Unit != victim {
			s2.events = append(s2.events, ev)
		}
	}
	checkNaive(t, after, s2, ms, 0.05, 0, analysis.Holm)

	// Idempotent: nothing left to remove, the first time kept.
	c.Advance(time.Hour)
	again, err := db.EraseUnit(ctx, "admin", victim)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Already || again.Removed != (Purged{}) || again.Pseudonym != ps || !again.ErasedAt.Equal(er.ErasedAt) {
		t.Errorf("second erasure %+v, want already erased at %v, nothing removed", again, er.ErasedAt)
	}
	audit, err := db.Audit(ctx, "unit", ps, 0)
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]int{}
	for _, a := range audit {
		actions[a.Action]++
	}
	if actions["unit.erase"] != 2 || actions["unit.consent"] != 1 {
		t.Errorf("audit under the pseudonym %v, want 2 erasures and the pseudonymized consent entry", actions)
	}

	// Read the file again from disk: the id is in no column of any table.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("duckdb", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	cols, err := raw.Query(`SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'main' AND data_type IN ('VARCHAR', 'JSON') ORDER BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	var checks [][2]string
	for cols.Next() {
		var tb, col string
		if err := cols.Scan(&tb, &col); err != nil {
			t.Fatal(err)
		}
		checks = append(checks, [2]string{tb, col})
	}
	cols.Close()
	if len(checks) < 20 {
		t.Fatalf("only %d text columns found: %v", len(checks), checks)
	}
	for _, tc := range checks {
		var n int
		q := `SELECT count(*) FROM "` + tc[0] + `" WHERE CAST("` + tc[1] + `" AS VARCHAR) LIKE ?`
		if err := raw.QueryRow(q, "%"+victim+"%").Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if n != 0 {
			t.Errorf("%s.%s: %d rows still name %q", tc[0], tc[1], n, victim)
		}
	}
	var n int
	raw.QueryRow(`SELECT count(*) FROM exposures WHERE unit = ?`, ps).Scan(&n)
	if n != 1 {
		t.Errorf("%d exposures under the pseudonym, want 1", n)
	}
}

// TestUnitStateAfterReopen: the in-memory index of units with consent, resets
// and erasures is read from the file on first use, so a restarted server still
// applies them; and it follows this process's writes after its first read.
func TestUnitStateAfterReopen(t *testing.T) {
	c := newClock()
	path := t.TempDir() + "/lift.duckdb"
	opt := DefaultOptions()
	opt.Now = c.Now
	ctx := context.Background()
	db, err := Open(ctx, path, opt)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := db.UnitState(ctx, "alice"); err != nil || st.Consent != nil || st.Erased { // index read, empty
		t.Fatalf("fresh state %+v, %v", st, err)
	}
	if _, err := db.RecordConsent(ctx, "t", consent("alice", 2, "personalization")); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ResetProfile(ctx, "t", "carol"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.EraseUnit(ctx, "t", "bob"); err != nil {
		t.Fatal(err)
	}
	check := func(when string, db *DB) {
		t.Helper()
		a, err1 := db.UnitState(ctx, "alice")
		b, err2 := db.UnitState(ctx, "bob")
		cr, err3 := db.UnitState(ctx, "carol")
		if err := errors.Join(err1, err2, err3); err != nil {
			t.Fatal(err)
		}
		if a.Consent == nil || a.Consent.Tier != 2 || !b.Erased || !b.ErasedAt.Equal(c.Now()) || b.Consent != nil || !cr.ResetAt.Equal(c.Now()) || cr.Erased {
			t.Errorf("%s: alice %+v, bob %+v, carol %+v", when, a, b, cr)
		}
	}
	check("same process", db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db2, err := Open(ctx, path, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	check("reopened", db2)
}
