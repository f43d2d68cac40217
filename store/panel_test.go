package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/metric"
)

// panelFixture stores metrics and events whose panels are computed by hand in the tests.
//
//	unit  event  ts (UTC)            value
//	a     order  2026-03-01 08:00    5
//	a     order  2026-03-01 23:59    3
//	a     order  2026-03-03 12:00    20
//	c     order  2026-03-02 00:00    7
//	d     order  2026-03-06 00:00    1     (after the range)
//	b     visit  2026-03-02 10:00    1     (no order)
func panelFixture(t *testing.T) *DB {
	t.Helper()
	db, _ := openTest(t, newClock())
	ctx := context.Background()
	for _, m := range []*experiment.Metric{
		{Name: "orders", EventType: "order", Aggregation: experiment.Sum},
		{Name: "order_count", EventType: "order", Aggregation: experiment.Count},
		{Name: "buyer", EventType: "order", Aggregation: experiment.Binary},
		{Name: "orders_capped", EventType: "order", Aggregation: experiment.Sum, Cap: &experiment.Cap{Value: 10}},
		{Name: "orders_mean", EventType: "order", Aggregation: experiment.Mean},
		{Name: "orders_1d", EventType: "order", Aggregation: experiment.Sum, Window: &experiment.Window{StartDays: 0, EndDays: 1.5}},
		{Name: "per_order", Aggregation: experiment.Ratio, Numerator: "orders", Denominator: "order_count"},
	} {
		if _, err := db.CreateMetric(ctx, "test", m); err != nil {
			t.Fatal(err)
		}
	}
	ts := func(s string) time.Time {
		v, err := time.Parse("2006-01-02 15:04", s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	evs := []experiment.Event{
		{Unit: "a", Type: "order", TS: ts("2026-03-01 08:00"), Value: 5},
		{Unit: "a", Type: "order", TS: ts("2026-03-01 23:59"), Value: 3},
		{Unit: "a", Type: "order", TS: ts("2026-03-03 12:00"), Value: 20},
		{Unit: "c", Type: "order", TS: ts("2026-03-02 00:00"), Value: 7},
		{Unit: "d", Type: "order", TS: ts("2026-03-06 00:00"), Value: 1},
		{Unit: "b", Type: "visit", TS: ts("2026-03-02 10:00"), Value: 1},
	}
	for i := range evs {
		evs[i].EventID = fmt.Sprint("e", i)
	}
	if _, _, err := db.IngestEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	return db
}

var panelFrom = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

func TestMetricPanel(t *testing.T) {
	db := panelFixture(t)
	ctx := context.Background()
	to := panelFrom.Add(72 * time.Hour)
	listAndRest := []metric.UnitGroup{{Units: []string{"a", "b"}}, {Rest: true}}
	for _, tc := range []struct {
		name     string
		q        PanelQuery
		units    []string
		group    []int
		y        []float64 // by unit, then period
		periods  int
		overlap  int
		perGroup []int
	}{
		// Hand-computed from the fixture: a has 5+3 on day 0 and 20 on day 2; c has 7 on
		// day 1; b has no order (zero-filled); d is outside the range, so not in the rest.
		{"sum by day", PanelQuery{Metric: "orders", Groups: listAndRest, From: panelFrom, To: to, Period: metric.Day},
			[]string{"a", "b", "c"}, []int{0, 0, 1}, []float64{8, 0, 20, 0, 0, 0, 0, 7, 0}, 3, 0, []int{2, 1}},
		{"count by day", PanelQuery{Metric: "order_count", Groups: listAndRest, From: panelFrom, To: to, Period: metric.Day},
			[]string{"a", "b", "c"}, []int{0, 0, 1}, []float64{2, 0, 1, 0, 0, 0, 0, 1, 0}, 3, 0, []int{2, 1}},
		{"binary by day", PanelQuery{Metric: "buyer", Groups: listAndRest, From: panelFrom, To: to, Period: metric.Day},
			[]string{"a", "b", "c"}, []int{0, 0, 1}, []float64{1, 0, 1, 0, 0, 0, 0, 1, 0}, 3, 0, []int{2, 1}},
		// The fixed cap 10 applies per cell: 20 → 10.
		{"capped", PanelQuery{Metric: "orders_capped", Groups: listAndRest, From: panelFrom, To: to, Period: metric.Day},
			[]string{"a", "b", "c"}, []int{0, 0, 1}, []float64{8, 0, 10, 0, 0, 0, 0, 7, 0}, 3, 0, []int{2, 1}},
		// One week covers the three days: a 28, c 7.
		{"sum by week", PanelQuery{Metric: "orders", Groups: listAndRest, From: panelFrom, To: to, Period: metric.Week},
			[]string{"a", "b", "c"}, []int{0, 0, 1}, []float64{28, 0, 7}, 1, 0, []int{2, 1}},
		// b is in both lists: left out and counted.
		{"overlap", PanelQuery{Metric: "orders", Groups: []metric.UnitGroup{{Units: []string{"a", "b"}}, {Units: []string{"b", "c"}}}, From: panelFrom, To: to, Period: metric.Day},
			[]string{"a", "c"}, []int{0, 1}, []float64{8, 0, 20, 0, 7, 0}, 3, 1, []int{1, 1}},
		// The rest alone: every unit with an order in the range.
		{"rest only", PanelQuery{Metric: "orders", Groups: []metric.UnitGroup{{Rest: true}}, From: panelFrom, To: to, Period: metric.Day},
			[]string{"a", "c"}, []int{0, 0}, []float64{8, 0, 20, 0, 7, 0}, 3, 0, []int{2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := db.MetricPanel(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p.Units, tc.units) || !reflect.DeepEqual(p.Group, tc.group) || !reflect.DeepEqual(p.Y, tc.y) ||
				p.Periods != tc.periods || p.Overlap != tc.overlap || !reflect.DeepEqual(p.GroupUnits, tc.perGroup) {
				t.Errorf("panel units %v groups %v y %v periods %d overlap %d per group %v;\nwant %v %v %v %d %d %v",
					p.Units, p.Group, p.Y, p.Periods, p.Overlap, p.GroupUnits, tc.units, tc.group, tc.y, tc.periods, tc.overlap, tc.perGroup)
			}
			for i := range p.Y {
				if p.Unit[i] != i/tc.periods || p.Time[i] != i%tc.periods {
					t.Fatalf("row %d is (unit %d, period %d), want (%d, %d)", i, p.Unit[i], p.Time[i], i/tc.periods, i%tc.periods)
				}
			}
		})
	}
}

func TestMetricPanelExperimentGroups(t *testing.T) {
	db := panelFixture(t)
	ctx := context.Background()
	if _, err := db.CreateExperiment(ctx, "test", abExperiment("exp")); err != nil {
		t.Fatal(err)
	}
	if err := db.LogExposures(ctx, []experiment.Exposure{
		{Experiment: "exp", Unit: "a", Variant: "treatment", TS: panelFrom},
		{Experiment: "exp", Unit: "a", Variant: "treatment", TS: panelFrom.Add(time.Hour)}, // duplicate: one unit
		{Experiment: "exp", Unit: "b", Variant: "control", TS: panelFrom},
	}); err != nil {
		t.Fatal(err)
	}
	p, err := db.MetricPanel(ctx, PanelQuery{Metric: "orders", Period: metric.Day, From: panelFrom, To: panelFrom.Add(48 * time.Hour),
		Groups: []metric.UnitGroup{{Experiment: "exp", Variant: "treatment"}, {Rest: true}}})
	if err != nil {
		t.Fatal(err)
	}
	// a is treated (8 on day 0); the rest has c (7 on day 1). b has no order, so it is not in the rest.
	if want := []string{"a", "c"}; !reflect.DeepEqual(p.Units, want) || !reflect.DeepEqual(p.Group, []int{0, 1}) || !reflect.DeepEqual(p.Y, []float64{8, 0, 0, 7}) {
		t.Errorf("units %v groups %v y %v", p.Units, p.Group, p.Y)
	}
}

func TestMetricPanelInvalid(t *testing.T) {
	db := panelFixture(t)
	ctx := context.Background()
	if _, err := db.CreateExperiment(ctx, "test", abExperiment("exp")); err != nil {
		t.Fatal(err)
	}
	to := panelFrom.Add(72 * time.Hour)
	rest := []metric.UnitGroup{{Units: []string{"a"}}, {Rest: true}}
	for _, tc := range []struct {
		name  string
		q     PanelQuery
		field string
	}{
		{"no metric", PanelQuery{Groups: rest, From: panelFrom, To: to, Period: metric.Day}, "metric"},
		{"unknown metric", PanelQuery{Metric: "nope", Groups: rest, From: panelFrom, To: to, Period: metric.Day}, "metric"},
		{"mean metric", PanelQuery{Metric: "orders_mean", Groups: rest, From: panelFrom, To: to, Period: metric.Day}, "metric"},
		{"ratio metric", PanelQuery{Metric: "per_order", Groups: rest, From: panelFrom, To: to, Period: metric.Day}, "metric"},
		{"bad period", PanelQuery{Metric: "orders", Groups: rest, From: panelFrom, To: to, Period: "month"}, "period"},
		{"empty range", PanelQuery{Metric: "orders", Groups: rest, From: to, To: panelFrom, Period: metric.Day}, "to"},
		{"too many periods", PanelQuery{Metric: "orders", Groups: rest, From: panelFrom, To: panelFrom.AddDate(3, 0, 0), Period: metric.Day}, "to"},
		{"no groups", PanelQuery{Metric: "orders", From: panelFrom, To: to, Period: metric.Day}, "groups"},
		{"two shapes", PanelQuery{Metric: "orders", Groups: []metric.UnitGroup{{Units: []string{"a"}, Rest: true}}, From: panelFrom, To: to, Period: metric.Day}, "groups[0]"},
		{"rest first", PanelQuery{Metric: "orders", Groups: []metric.UnitGroup{{Rest: true}, {Units: []string{"a"}}}, From: panelFrom, To: to, Period: metric.Day}, "groups[0]"},
		{"empty list", PanelQuery{Metric: "orders", Groups: []metric.UnitGroup{{Units: []string{}}}, From: panelFrom, To: to, Period: metric.Day}, "groups[0].units"},
		{"empty unit", PanelQuery{Metric: "orders", Groups: []metric.UnitGroup{{Units: []string{"a", ""}}}, From: panelFrom, To: to, Period: metric.Day}, "groups[0].units[1]"},
		{"unknown experiment", PanelQuery{Metric: "orders", Groups: []metric.UnitGroup{{Experiment: "zz", Variant: "x"}}, From: panelFrom, To: to, Period: metric.Day}, "groups[0].experiment"},
		{"unknown variant", PanelQuery{Metric: "orders", Groups: []metric.UnitGroup{{Experiment: "exp", Variant: "x"}}, From: panelFrom, To: to, Period: metric.Day}, "groups[0].variant"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := db.MetricPanel(ctx, tc.q)
			if experiment.KindOf(err) != experiment.Invalid || fieldOf(err) != tc.field {
				t.Fatalf("error %v, want Invalid naming %s", err, tc.field)
			}
		})
	}
}

// fieldOf returns the field an experiment error names ("" for none).
func fieldOf(err error) string {
	var e *experiment.Error
	if !asError(err, &e) {
		return ""
	}
	return e.Field
}

func TestUnitValues(t *testing.T) {
	db := panelFixture(t)
	ctx := context.Background()
	e, err := db.CreateExperiment(ctx, "test", abExperiment("exp"))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 6, 0, 0, 0, time.UTC)
	if err := db.LogExposures(ctx, []experiment.Exposure{
		{Experiment: "exp", Unit: "a", Variant: "treatment", TS: t0},
		{Experiment: "exp", Unit: "b", Variant: "control", TS: t0},
		{Experiment: "exp", Unit: "c", Variant: "control", TS: t0.Add(48 * time.Hour)}, // after c's order
		{Experiment: "exp", Unit: "x", Variant: "control", TS: t0},
		{Experiment: "exp", Unit: "x", Variant: "treatment", TS: t0}, // two arms: left out
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpsertUnitAttributes(ctx, []UnitAttributes{{Unit: "a", Attributes: map[string]any{"plan": "pro"}}}); err != nil {
		t.Fatal(err)
	}
	arms := []string{"control", "treatment"}
	for _, tc := range []struct {
		metric string
		want   []UnitValue
	}{
		// a: 5 + 3 + 20 after its exposure; b: no order; c: its order precedes its exposure.
		{"orders", []UnitValue{{"a", "treatment", 28, map[string]any{"plan": "pro"}}, {"b", "control", 0, nil}, {"c", "control", 0, nil}}},
		// Window [0, 1.5 days) from 03-01 06:00: a's 20 on 03-03 12:00 is out.
		{"orders_1d", []UnitValue{{"a", "treatment", 8, map[string]any{"plan": "pro"}}, {"b", "control", 0, nil}, {"c", "control", 0, nil}}},
		{"buyer", []UnitValue{{"a", "treatment", 1, map[string]any{"plan": "pro"}}, {"b", "control", 0, nil}, {"c", "control", 0, nil}}},
		// A mean metric leaves out units without events: (5+3+20)/3.
		{"orders_mean", []UnitValue{{"a", "treatment", 28.0 / 3, map[string]any{"plan": "pro"}}}},
	} {
		t.Run(tc.metric, func(t *testing.T) {
			got, multi, err := db.UnitValues(ctx, nil, e, arms, tc.metric, "metric")
			if err != nil {
				t.Fatal(err)
			}
			if multi != 1 || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("values %v (multiple arms %d), want %v (1)", got, multi, tc.want)
			}
		})
	}
	if _, _, err := db.UnitValues(ctx, nil, e, arms, "per_order", "metric"); fieldOf(err) != "metric" {
		t.Errorf("ratio metric: error %v, want Invalid naming metric", err)
	}
}

// BenchmarkMetricPanel builds the daily panel of 100,000 units × 20 days (one
// event per unit and day, 2,000,000 events), every unit in the rest group.
//
//	go test ./store/ -run '^$' -bench MetricPanel -benchtime 3x
func BenchmarkMetricPanel(b *testing.B) {
	db, _ := openTest(b, newClock())
	ctx := context.Background()
	if _, err := db.CreateMetric(ctx, "test", &experiment.Metric{Name: "orders", EventType: "order", Aggregation: experiment.Sum}); err != nil {
		b.Fatal(err)
	}
	if _, err := db.SQL().ExecContext(ctx, `INSERT INTO events
		SELECT 'e' || u || '-' || d, 'u' || lpad(u::VARCHAR, 6, '0'), 'order',
			TIMESTAMPTZ '2026-03-01 12:00:00+00' + INTERVAL (d) DAY, (u % 7) + d, NULL
		FROM range(100000) t(u), range(20) s(d)`); err != nil {
		b.Fatal(err)
	}
	q := PanelQuery{Metric: "orders", Groups: []metric.UnitGroup{{Rest: true}}, From: panelFrom, To: panelFrom.AddDate(0, 0, 20), Period: metric.Day}
	b.ResetTimer()
	for range b.N {
		p, err := db.MetricPanel(ctx, q)
		if err != nil {
			b.Fatal(err)
		}
		if len(p.Y) != 2_000_000 {
			b.Fatalf("%d cells, want 2,000,000", len(p.Y))
		}
	}
}

// TestMarketPanel: the per-unit panel summed over the units of each market,
// by hand from panelFixture (a: 8, 0, 20 by day; c: 0, 7, 0): a market
// attribute that is a number names its market as text, a unit without it is
// left out and counted, and without an attribute every unit is a market.
func TestMarketPanel(t *testing.T) {
	db := panelFixture(t)
	ctx := context.Background()
	to := panelFrom.Add(72 * time.Hour)
	for _, tc := range []struct {
		name       string
		attrs      []UnitAttributes
		attribute  string
		markets    []string
		units      []int
		y          [][]float64
		unassigned int
	}{
		{"one market", []UnitAttributes{{Unit: "a", Attributes: map[string]any{"city": "paris"}}, {Unit: "c", Attributes: map[string]any{"city": "paris"}}},
			"city", []string{"paris"}, []int{2}, [][]float64{{8, 7, 20}}, 0},
		{"a number, one unit without", []UnitAttributes{{Unit: "a", Attributes: map[string]any{"dma": 501.0}}, {Unit: "c", Attributes: map[string]any{"city": "lyon", "dma": nil}}},
			"dma", []string{"501"}, []int{1}, [][]float64{{8, 0, 20}}, 1},
		{"every unit", nil, "", []string{"a", "c"}, []int{1, 1}, [][]float64{{8, 0, 20}, {0, 7, 0}}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.attrs != nil {
				if _, err := db.UpsertUnitAttributes(ctx, tc.attrs); err != nil {
					t.Fatal(err)
				}
			}
			p, err := db.MarketPanel(ctx, MarketPanelQuery{Metric: "orders", Attribute: tc.attribute, From: panelFrom, To: to, Period: metric.Day})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p.Markets, tc.markets) || !reflect.DeepEqual(p.Units, tc.units) || !reflect.DeepEqual(p.Y, tc.y) || p.Unassigned != tc.unassigned {
				t.Errorf("markets %v units %v y %v unassigned %d; want %v %v %v %d", p.Markets, p.Units, p.Y, p.Unassigned, tc.markets, tc.units, tc.y, tc.unassigned)
			}
			if p.PeriodLabel(2) != "2026-03-03" {
				t.Errorf("period 2 is labelled %q, want 2026-03-03", p.PeriodLabel(2))
			}
		})
	}
	_, err := db.MarketPanel(ctx, MarketPanelQuery{Metric: "orders", Attribute: "region", From: panelFrom, To: to, Period: metric.Day})
	var e *experiment.Error
	if !experiment.Is(err, experiment.InsufficientData) || !errors.As(err, &e) || e.Field != "market" {
		t.Errorf("no unit has the attribute: %v, want InsufficientData on market", err)
	}
	if _, err := db.MarketPanel(ctx, MarketPanelQuery{Metric: "orders_mean", From: panelFrom, To: to, Period: metric.Day}); !experiment.Is(err, experiment.Invalid) {
		t.Errorf("a mean metric: %v, want Invalid", err)
	}
}
