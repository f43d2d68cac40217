package api

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/results"
	"github.com/liftlab/lift/store"
)

// TestDailyMaturity: for a day-1 retention metric (a visit in [1, 2) days
// after the first exposure, matured_only), each point of the daily series
// states its denominator per arm, the units whose window had ended by the end
// of the day (or by now, for today), and whether the day's cohort has matured
// by now; the report's maturity table shows the same. The expected counts are
// computed here from the fixture's definition, unit by unit.
func TestDailyMaturity(t *testing.T) {
	clock := time.Date(2026, 3, 1, 7, 0, 0, 0, time.UTC)
	sopt := store.DefaultOptions()
	sopt.Now = func() time.Time { return clock }
	sopt.MaxClockSkew = -1
	ts := newTestServerWithStore(t, sopt)
	ts.must(http.StatusCreated, "POST", "/v1/metrics", map[string]any{"name": "ret_d1", "event_type": "visit", "aggregation": "binary",
		"window": map[string]any{"start_days": 1, "end_days": 2, "matured_only": true}}, nil)
	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{
		"key": "ret", "metrics": []map[string]any{{"name": "ret_d1", "primary": true}},
		"variants": []map[string]any{{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}},
	}, nil)
	ts.must(http.StatusOK, "POST", "/v1/experiments/ret/start", nil, nil)
	// 80 units, 20 a day on 1–4 March from 08:00, a minute apart; u%2 is the
	// arm; units with u%3 ≠ 0 come back 1.5 days after their exposure.
	exposedAt := func(u int) time.Time {
		return time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC).Add(time.Duration(u/20)*24*time.Hour + time.Duration(u%20)*time.Minute)
	}
	arm := func(u int) string { return []string{"control", "treatment"}[u%2] }
	var xs, evs []map[string]any
	for u := range 80 {
		unit := fmt.Sprintf("u%d", u)
		xs = append(xs, map[string]any{"experiment": "ret", "unit": unit, "variant": arm(u), "ts": exposedAt(u)})
		if u%3 != 0 {
			evs = append(evs, map[string]any{"event_id": unit, "unit": unit, "type": "visit", "ts": exposedAt(u).Add(36 * time.Hour)})
		}
	}
	ts.must(http.StatusOK, "POST", "/v1/exposures", map[string]any{"exposures": xs}, nil)
	ts.must(http.StatusOK, "POST", "/v1/events", map[string]any{"events": evs}, nil)
	clock = time.Date(2026, 3, 5, 12, 0, 0, 0, time.UTC) // the analysis time

	var d results.Daily
	ts.must(http.StatusOK, "GET", "/v1/experiments/ret/results/daily?metric=ret_d1", nil, &d)
	if len(d.Days) < 4 {
		t.Fatalf("daily series %+v", d.Days)
	}
	status, body := ts.do("GET", "/v1/experiments/ret/report.html", ts.admin, nil)
	if status != http.StatusOK {
		t.Fatalf("report: %d %s", status, body)
	}
	table := regexp.MustCompile(`(?s)<table id="maturity-table">.*?</table>`).FindString(string(body))
	if table == "" {
		t.Fatalf("the report has no maturity table:\n%s", body)
	}
	for _, p := range d.Days {
		day, _ := time.Parse("2006-01-02", p.Date)
		cut := day.Add(24 * time.Hour)
		at := cut // a window counts when it has ended by the day's end, or by now
		if clock.Before(at) {
			at = clock
		}
		want := map[string][2]int64{} // arm → {denominator, units}
		for u := range 80 {
			if !exposedAt(u).Before(cut) {
				continue
			}
			w := want[arm(u)]
			w[1]++
			if !exposedAt(u).Add(48 * time.Hour).After(at) {
				w[0]++
			}
			want[arm(u)] = w
		}
		m := p.Maturity
		if m == nil {
			t.Fatalf("%s: no maturity", p.Date)
		}
		// The day's cohort has matured when its last possible window end,
		// the day's end plus two days, is past.
		if wantMatured := !cut.Add(48 * time.Hour).After(clock); m.CohortMatured != wantMatured || m.WindowEndDays != 2 {
			t.Errorf("%s: cohort matured %v, window end %v; want %v, 2", p.Date, m.CohortMatured, m.WindowEndDays, wantMatured)
		}
		var n, units int64
		for _, a := range []string{"control", "treatment"} {
			if m.Denominators[a] != want[a][0] || p.Units[a] != want[a][1] {
				t.Errorf("%s, %s: denominator %d of %d units, want %d of %d", p.Date, a, m.Denominators[a], p.Units[a], want[a][0], want[a][1])
			}
			n, units = n+want[a][0], units+want[a][1]
		}
		if units > 0 && !near(m.Share, float64(n)/float64(units), 1e-12) {
			t.Errorf("%s: share %v, want %d/%d", p.Date, m.Share, n, units)
		}
		// A day whose point counts units analyzes them: its arms' n is the denominator.
		for _, v := range p.Variants {
			if v.N != m.Denominators[v.Name] {
				t.Errorf("%s, %s: the analysis counts %d units, the denominator says %d", p.Date, v.Name, v.N, m.Denominators[v.Name])
			}
		}
		row := regexp.MustCompile(`(?s)<tr data-date="` + p.Date + `"[^>]*>.*?</tr>`).FindString(table)
		cells := fmt.Sprintf(`<td class="den">%d of %d</td><td class="den">%d of %d</td>`, want["control"][0], want["control"][1], want["treatment"][0], want["treatment"][1])
		if !strings.Contains(row, cells) || strings.Contains(row, "not yet matured") == m.CohortMatured {
			t.Errorf("%s: the report's row %q, want %s and matured %v", p.Date, row, cells, m.CohortMatured)
		}
	}
}
