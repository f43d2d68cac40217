package store

import (
	"context"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
)

// TestDataVersion: every committed write an analysis reads changes
// DataVersion (exposures, events, decisions, the registry, metric
// definitions, consent, erasure, an erasure's ClickHouse part, a bandit's
// first version); reads (a bandit's versions once stored), a forwarder's cursor and the writes of analyses' outputs
// (result snapshots, journey day roll-ups) leave it as it is.
func TestDataVersion(t *testing.T) {
	c := newClock()
	db, _ := openTest(t, c)
	ctx := context.Background()
	ts := c.t.Add(time.Minute)
	for _, s := range []struct {
		name    string
		changes bool
		do      func() error
	}{
		{"a metric definition", true, func() error {
			_, err := db.CreateMetric(ctx, "admin", &experiment.Metric{Name: "revenue", EventType: "purchase", Aggregation: "sum"})
			return err
		}},
		{"an experiment", true, func() error {
			_, err := db.CreateExperiment(ctx, "admin", abExperiment("btn"))
			return err
		}},
		{"a start", true, func() error {
			_, err := db.StartExperiment(ctx, "admin", "btn")
			return err
		}},
		{"a read", false, func() error {
			_, err := db.ListExperiments(ctx)
			return err
		}},
		{"a bandit", true, func() error {
			_, err := db.CreateExperiment(ctx, "admin", banditExp("arms"))
			return err
		}},
		{"its versions' first read, which stores version 0", true, func() error {
			_, err := db.BanditVersions(ctx, "arms")
			return err
		}},
		// A report of the bandit reads them: were that a change, the
		// console's report would be stale as soon as computed.
		{"its versions read again", false, func() error {
			_, err := db.BanditVersions(ctx, "arms")
			return err
		}},
		{"exposures", true, func() error { return db.LogExposures(ctx, batch("u", 10, ts)) }},
		{"events", true, func() error {
			_, _, err := db.IngestEvents(ctx, []experiment.Event{{EventID: "e1", Unit: "u-1", Type: "purchase", TS: ts, Value: 3}})
			return err
		}},
		{"a result snapshot", false, func() error {
			_, err := db.SaveSnapshot(ctx, "experiment", "btn", ts, "hash", "test", func(id int64) ([]byte, error) { return []byte(`{}`), nil })
			return err
		}},
		{"journey day roll-ups", false, func() error {
			return db.SaveJourneyDays(ctx, []JourneyDay{{Journey: "home", Day: ts.Truncate(24 * time.Hour), Decisions: 1}})
		}},
		{"a consent", true, func() error {
			_, err := db.RecordConsent(ctx, "admin", experiment.Consent{Unit: "u2", Tier: 1, PolicyID: "p", PolicyVersion: "1"})
			return err
		}},
		{"an erasure", true, func() error {
			_, err := db.EraseUnit(ctx, "admin", "u-1")
			return err
		}},
		// A forwarder's cursor is not data an analysis reads; the end of an
		// erasure in ClickHouse changes what the ClickHouse engine answers.
		{"a forward cursor", false, func() error { return db.SetForwardCursor(ctx, "clickhouse:exposures", 0) }},
		{"an erasure of a forwarded unit", true, func() error {
			_, err := db.EraseUnit(ctx, "admin", "u-2")
			return err
		}},
		{"its ClickHouse part done", true, func() error {
			ps, err := db.Pseudonym(ctx, "u-2")
			if err != nil {
				return err
			}
			return db.FinishErasure(ctx, ps, c.Now(), map[string]int{"shards": 1})
		}},
	} {
		before := db.DataVersion()
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if after := db.DataVersion(); (after != before) != s.changes {
			t.Errorf("%s: version %+v, then %+v; want a change %v", s.name, before, after, s.changes)
		}
	}
}
