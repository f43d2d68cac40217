package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/liftlab/lift/experiment"
)

// TestDiDCohortsInvalid: a staggered request's bad fields are 400 naming them,
// and chart=staggered draws the Callaway & Sant'Anna event study.
func TestDiDCohortsInvalid(t *testing.T) {
	ts := newTestServer(t)
	plantDiD(t, ts)
	if _, err := ts.db.CreateExperiment(context.Background(), "test", &experiment.Experiment{Key: "journey", Name: "Journey",
		Variants: []experiment.Variant{{Name: "off", Weight: 0.5}, {Name: "on", Weight: 0.5}}}); err != nil {
		t.Fatal(err)
	}
	analyst := ts.key("ana", experiment.RoleAnalyst)
	early := map[string]any{"rollout": "2026-03-05T00:00:00Z", "units": []string{"t00", "t01", "t02"}}
	late := map[string]any{"rollout": "2026-03-10T00:00:00Z", "units": []string{"t03", "t04", "t05"}}
	base := func(extra map[string]any) map[string]any {
		b := map[string]any{"metric": "spend", "control": "rest", "from": "2026-03-01T00:00:00Z", "to": "2026-03-15T00:00:00Z"}
		for k, v := range extra {
			b[k] = v
		}
		return b
	}
	for _, c := range []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"both shapes", base(map[string]any{"cohorts": []any{early}, "treated": map[string]any{"units": []string{"t09"}}, "rollout": "2026-03-08T00:00:00Z"}), "cohorts"},
		{"empty", base(map[string]any{"cohorts": []any{}}), "cohorts"},
		{"rollout beside cohorts", base(map[string]any{"cohorts": []any{early}, "rollout": "2026-03-08T00:00:00Z"}), "rollout"},
		{"bad rollout", base(map[string]any{"cohorts": []any{early, map[string]any{"rollout": "soon", "units": []string{"t06"}}}}), "cohorts[1].rollout"},
		{"rollout in the first period", base(map[string]any{"cohorts": []any{early, map[string]any{"rollout": "2026-03-01T06:00:00Z", "units": []string{"t06"}}}}), "cohorts[1].rollout"},
		{"unknown variant", base(map[string]any{"cohorts": []any{map[string]any{"rollout": "2026-03-05T00:00:00Z", "experiment": "journey", "variant": "new"}, late}}), "cohorts[0].variant"},
		{"neither", base(nil), "treated"},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, body := ts.do("POST", "/v1/analyses/did", analyst, c.body)
			if status != http.StatusBadRequest || !strings.Contains(string(body), fmt.Sprintf(`"%s: `, c.field)) {
				t.Errorf("%d %s; want 400 naming %s", status, body, c.field)
			}
		})
	}
	var out didResult
	ts.mustAs(analyst, http.StatusOK, "POST", "/v1/analyses/did", base(map[string]any{"cohorts": []any{early, late}, "event_study": true}), &out)
	if !out.StaggeredTiming || out.Staggered == nil || out.Warning == "" || fmt.Sprint(out.Cohorts) != "[4 9]" || out.TreatedUnits != 6 || out.RolloutPeriod != 4 || len(out.Rollouts) != 2 {
		t.Errorf("cohorts %v staggered %v (%v) warning %q treated %d rollout period %d rollouts %v; want [4 9], the CS result and a warning, 6 treated, 4, two rollouts",
			out.Cohorts, out.StaggeredTiming, out.Staggered != nil, out.Warning, out.TreatedUnits, out.RolloutPeriod, out.Rollouts)
	}
	checkChart(t, ts, analyst, "/v1/analyses/did?format=svg&chart=staggered", base(map[string]any{"cohorts": []any{early, late}}), "image/svg+xml")
}
