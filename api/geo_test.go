package api

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/liftlab/lift/experiment"
)

// geoRows is a small panel in long form: donors a–d on lines and a weekly
// wiggle, t1 the midpoint of a and b with +10 from day 6 (an exact fit, so
// the effect is exactly 10).
func geoRows() []map[string]any {
	level := map[string]float64{"a": 10, "b": 20, "c": 30, "d": 40, "t1": 15}
	slope := map[string]float64{"a": 1, "b": 3, "c": 2, "d": 4, "t1": 2}
	var rows []map[string]any
	for day := 1; day <= 8; day++ {
		for _, m := range []string{"a", "b", "c", "d", "t1"} {
			v := level[m] + slope[m]*float64(day) + float64(day%3)*level[m]/10
			if m == "t1" && day >= 6 {
				v += 10
			}
			rows = append(rows, map[string]any{"unit": m, "period": strconv.Itoa(day), "value": v})
		}
	}
	return rows
}

// TestGeoAPI: POST /v1/analyses/geo answers the planted effect with its
// weights; analysts may call it and viewers may not; bad input is 400 (or
// 422 for a panel too short) naming the field, as a JSON path.
func TestGeoAPI(t *testing.T) {
	ts := newTestServer(t)
	analyst := ts.key("analyst", experiment.RoleAnalyst)
	viewer := ts.key("viewer", experiment.RoleViewer)
	body := func(extra map[string]any) map[string]any {
		b := map[string]any{"rows": geoRows(), "treated": []string{"t1"}, "start": "6", "conformal": false, "placebo": false}
		for k, v := range extra {
			b[k] = v
		}
		return b
	}
	var out geoResult
	ts.mustAs(analyst, http.StatusOK, "POST", "/v1/analyses/geo", body(nil), &out)
	if math.Abs(out.Average.Effect-10) > 1e-6 || out.NUnits != 5 || out.NPeriods != 8 || out.Start != "6" {
		t.Errorf("effect %g, units %d, periods %d, start %q; want 10, 5, 8, \"6\"", out.Average.Effect, out.NUnits, out.NPeriods, out.Start)
	}
	if w := out.Average.Weights; len(w) != 2 || math.Abs(w[0].Weight-0.5) > 1e-9 {
		t.Errorf("weights %+v, want a and b at ½", w)
	}
	if st, _ := ts.do("POST", "/v1/analyses/geo", viewer, body(nil)); st != http.StatusForbidden {
		t.Errorf("viewer: %d, want 403", st)
	}
	dup := append(geoRows(), map[string]any{"unit": "a", "period": "3", "value": 1.0})
	gap := geoRows()[1:]
	for _, c := range []struct {
		name   string
		body   map[string]any
		status int
		field  string
	}{
		{"unknown market", body(map[string]any{"treated": []string{"t1", "zz"}}), 400, "treated[1]"},
		{"no value", body(map[string]any{"rows": append(geoRows(), map[string]any{"unit": "e", "period": "1"})}), 400, "rows[40].value"},
		{"repeated cell", body(map[string]any{"rows": dup}), 400, "rows[40]"},
		{"unbalanced", body(map[string]any{"rows": gap}), 400, "rows"},
		{"bad method", body(map[string]any{"method": "lasso"}), 400, "method"},
		{"bad alpha", body(map[string]any{"alpha": 1.5}), 400, "alpha"},
		{"start after the end", body(map[string]any{"start": "9"}), 422, "start"},
		{"no donors", body(map[string]any{"treated": []string{"t1", "a", "b", "c"}}), 422, "treated"},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, b := ts.do("POST", "/v1/analyses/geo", analyst, c.body)
			var e struct {
				Error struct{ Message string }
			}
			_ = json.Unmarshal(b, &e)
			if st != c.status || !strings.HasPrefix(e.Error.Message, c.field+":") {
				t.Errorf("%d %s; want %d naming %s", st, b, c.status, c.field)
			}
		})
	}
}
