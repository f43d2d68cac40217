package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/store"
)

// TestGeoStoredMatchesUpload: POST /v1/analyses/geo over stored events (a
// sum metric per market, the market a unit attribute) answers exactly what
// the same endpoint answers for the uploaded panel of the same data, summed
// here by hand from the generated events. Values are multiples of ¼, so every
// sum is exact whatever its order and the two answers agree to the byte.
// Events outside [from, to) and of other types, and a unit without the
// attribute, are left out; bad requests are 400 (or 422) naming the field.
func TestGeoStoredMatchesUpload(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	if _, err := ts.db.CreateMetric(ctx, "test", &experiment.Metric{Name: "sales", EventType: "purchase", Aggregation: experiment.Sum}); err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	const days, startDay = 21, 14
	markets := []string{"m0", "m1", "m2", "m3", "m4", "m5", "t1", "t2"}
	level := []int{0, 2, 4, 6, 8, 10, 5, 7} // the test markets inside the donors' range
	r := rand.New(rand.NewPCG(23, 3))
	want := map[string][]float64{} // market → day → Σ value
	var evs []experiment.Event
	var attrs []store.UnitAttributes
	n := 0
	event := func(unit, typ string, ts time.Time, v float64) {
		n++
		evs = append(evs, experiment.Event{EventID: fmt.Sprintf("e%d", n), Unit: unit, Type: typ, TS: ts, Value: v})
	}
	for mi, m := range markets {
		want[m] = make([]float64, days)
		for k := range 3 {
			u := fmt.Sprintf("%s-u%d", m, k)
			attrs = append(attrs, store.UnitAttributes{Unit: u, Attributes: map[string]any{"city": m, "tier": float64(k)}})
			for d := range days {
				for range 1 + r.IntN(3) {
					v := float64(10+level[mi]+r.IntN(7)+d/3) + 0.25*float64(r.IntN(4))
					if (m == "t1" || m == "t2") && d >= startDay {
						v += 6
					}
					event(u, "purchase", from.Add(time.Duration(d)*24*time.Hour+time.Duration(r.IntN(86400))*time.Second), v)
					want[m][d] += v
				}
			}
			event(u, "purchase", from.Add(-time.Hour), 1000)        // before from
			event(u, "purchase", from.Add(days*24*time.Hour), 1000) // at to (exclusive)
			event(u, "visit", from.Add(30*time.Hour), 1000)         // another type
		}
	}
	event("nomad", "purchase", from.Add(50*time.Hour), 500) // no city: left out
	if _, _, err := ts.db.IngestEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.db.UpsertUnitAttributes(ctx, attrs); err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	for _, m := range markets {
		for d := range days {
			rows = append(rows, map[string]any{"unit": m, "period": from.AddDate(0, 0, d).Format("2006-01-02"), "value": want[m][d]})
		}
	}
	common := map[string]any{"treated": []string{"t1", "t2"}}
	body := func(kv ...any) map[string]any {
		b := map[string]any{}
		for k, v := range common {
			b[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			b[kv[i].(string)] = kv[i+1]
		}
		return b
	}
	storedBody := body("metric", "sales", "market", "city", "from", "2026-03-01T00:00:00Z", "to", "2026-03-22T00:00:00Z", "period", "day", "start", "2026-03-15T12:00:00Z")
	var stored, uploaded geoResult
	ts.must(http.StatusOK, "POST", "/v1/analyses/geo", storedBody, &stored)
	ts.must(http.StatusOK, "POST", "/v1/analyses/geo", body("rows", rows, "start", "2026-03-15"), &uploaded)
	a, _ := json.Marshal(stored.Report)
	b, _ := json.Marshal(uploaded.Report)
	if !bytes.Equal(a, b) {
		t.Errorf("stored events and the uploaded panel answer differently:\nstored   %.600s\nuploaded %.600s", a, b)
	}
	if stored.NUnits != 8 || stored.NPeriods != days || stored.Start != "2026-03-15" || stored.NPre != startDay {
		t.Errorf("units %d periods %d start %q pre %d; want 8, %d, 2026-03-15, %d", stored.NUnits, stored.NPeriods, stored.Start, stored.NPre, days, startDay)
	}
	st := stored.Stored
	if st == nil || st.Unassigned != 1 || st.Market != "city" || st.Aggregation != "sum" || len(st.MarketUnits) != 8 || st.MarketUnits["t1"] != 3 {
		t.Errorf("stored %+v: want 8 markets of 3 units, 1 unit without a city", st)
	}
	if uploaded.Stored != nil {
		t.Errorf("the uploaded panel says it is stored: %+v", uploaded.Stored)
	}
	// Without a market attribute every unit is a market: 25 of them.
	var perUnit geoResult
	ts.must(http.StatusOK, "POST", "/v1/analyses/geo", body("metric", "sales", "from", "2026-03-01T00:00:00Z", "to", "2026-03-22T00:00:00Z",
		"start", "2026-03-15T00:00:00Z", "treated", []string{"t1-u0"}, "conformal", false, "placebo", false), &perUnit)
	if perUnit.NUnits != 25 || perUnit.Donors != 24 {
		t.Errorf("per-unit panel: %d units, %d donors; want 25, 24", perUnit.NUnits, perUnit.Donors)
	}
	// The page and the charts over stored events.
	if st, b := ts.do("POST", "/v1/analyses/geo?format=html", ts.admin, storedBody); st != http.StatusOK || !strings.Contains(string(b), "Effect on sales") {
		t.Errorf("format=html over stored events: %d %.200s", st, b)
	}
	for _, c := range []struct {
		name   string
		body   map[string]any
		status int
		field  string
	}{
		{"rows and metric", body("rows", rows, "metric", "sales", "start", "2026-03-15"), 400, "metric"},
		{"neither", body("start", "2026-03-15"), 400, "rows"},
		{"from with rows", body("rows", rows, "start", "2026-03-15", "from", "2026-03-01T00:00:00Z"), 400, "from"},
		{"unknown metric", body("metric", "revenue", "from", "2026-03-01T00:00:00Z", "to", "2026-03-22T00:00:00Z", "start", "2026-03-15T00:00:00Z"), 400, "metric"},
		{"bad period", body("metric", "sales", "from", "2026-03-01T00:00:00Z", "to", "2026-03-22T00:00:00Z", "start", "2026-03-15T00:00:00Z", "period", "month"), 400, "period"},
		{"no to", body("metric", "sales", "from", "2026-03-01T00:00:00Z", "start", "2026-03-15T00:00:00Z"), 400, "to"},
		{"start a label", body("metric", "sales", "from", "2026-03-01T00:00:00Z", "to", "2026-03-22T00:00:00Z", "start", "2026-03-15"), 400, "start"},
		{"start after to", body("metric", "sales", "from", "2026-03-01T00:00:00Z", "to", "2026-03-22T00:00:00Z", "start", "2026-03-23T00:00:00Z"), 400, "start"},
		{"no unit has the attribute", body("metric", "sales", "market", "region", "from", "2026-03-01T00:00:00Z", "to", "2026-03-22T00:00:00Z", "start", "2026-03-15T00:00:00Z"), 422, "market"},
		{"unknown market", body("metric", "sales", "market", "city", "from", "2026-03-01T00:00:00Z", "to", "2026-03-22T00:00:00Z", "start", "2026-03-15T00:00:00Z", "treated", []string{"t9"}), 400, "treated[0]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, b := ts.do("POST", "/v1/analyses/geo", ts.admin, c.body)
			if e := errorOf(t, b); st != c.status || !strings.HasPrefix(e.Message, c.field+":") {
				t.Errorf("%d %s; want %d naming %s", st, b, c.status, c.field)
			}
		})
	}
}
