package api

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/analysis/did"
	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/store"
)

// quasiStart is the first day of the synthetic panels.
var quasiStart = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// plantedDiD is a synthetic rollout: 40 treated and 60 control units observed for
// 14 days, one "purchase" event per unit and day with value
//
//	y_it = 20 + α_i + 0.3·t + δ·treated_i·1{t ≥ 7} + ε_it,  α_i ~ U(0, 10), ε ~ N(0, 1),
//
// so parallel trends hold and the planted effect is δ = 5 per unit-day from day 7
// (the rollout, 2026-03-08). It returns the panel as generated, in the store's
// order (units sorted by id, days ascending), for an independent fit.
type plantedDiD struct {
	delta   float64
	rollout time.Time
	treated []string
	unit    []int
	period  []int
	y       []float64
	isTreat []bool
	post    []bool
}

func plantDiD(t *testing.T, ts *tserver) *plantedDiD { return plantDiDTrend(t, ts, 0) }

// plantDiDTrend is plantDiD with an extra trend of slope·t in the treated units
// before the rollout (slope 0: parallel trends).
func plantDiDTrend(t *testing.T, ts *tserver, slope float64) *plantedDiD {
	t.Helper()
	ctx := context.Background()
	if _, err := ts.db.CreateMetric(ctx, "test", &experiment.Metric{Name: "spend", EventType: "purchase", Aggregation: experiment.Sum}); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	p := &plantedDiD{delta: 5, rollout: quasiStart.AddDate(0, 0, 7)}
	var evs []experiment.Event
	// Unit ids c00…c59 sort before t00…t39: the store numbers them in this order.
	var units []string
	for i := range 60 {
		units = append(units, fmt.Sprintf("c%02d", i))
	}
	for i := range 40 {
		u := fmt.Sprintf("t%02d", i)
		units = append(units, u)
		p.treated = append(p.treated, u)
	}
	for ui, u := range units {
		treated := strings.HasPrefix(u, "t")
		alpha := 10 * r.Float64()
		for day := range 14 {
			y := 20 + alpha + 0.3*float64(day) + r.NormFloat64()
			if treated && day >= 7 {
				y += p.delta
			}
			if treated && day < 7 {
				y += slope * float64(day-7)
			}
			ts := quasiStart.AddDate(0, 0, day).Add(time.Duration(r.IntN(86400)) * time.Second)
			evs = append(evs, experiment.Event{EventID: fmt.Sprintf("%s-%d", u, day), Unit: u, Type: "purchase", TS: ts, Value: y})
			p.unit, p.period, p.y = append(p.unit, ui), append(p.period, day), append(p.y, y)
			p.isTreat, p.post = append(p.isTreat, treated), append(p.post, day >= 7)
		}
	}
	// A unit with purchases only after the panel: not in "rest".
	evs = append(evs, experiment.Event{EventID: "late", Unit: "z", Type: "purchase", TS: quasiStart.AddDate(0, 1, 0), Value: 1})
	if _, _, err := ts.db.IngestEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDiDPlanted(t *testing.T) {
	ts := newTestServer(t)
	p := plantDiD(t, ts)
	analyst := ts.key("ana", experiment.RoleAnalyst)
	// The same treated units by list and by experiment variant.
	ctx := context.Background()
	if _, err := ts.db.CreateExperiment(ctx, "test", &experiment.Experiment{Key: "journey", Name: "New onboarding journey",
		Variants: []experiment.Variant{{Name: "off", Weight: 0.5}, {Name: "on", Weight: 0.5}}}); err != nil {
		t.Fatal(err)
	}
	var xs []experiment.Exposure
	for _, u := range p.treated {
		xs = append(xs, experiment.Exposure{Experiment: "journey", Unit: u, Variant: "on", TS: p.rollout})
	}
	if err := ts.db.LogExposures(ctx, xs); err != nil {
		t.Fatal(err)
	}
	// Independent fit of the generated panel with the same estimator: the API must
	// give exactly this (the panel plumbing loses nothing).
	ref, err := did.Regress(p.y, p.isTreat, p.post, p.unit, did.CR1, 0.05)
	if err != nil {
		t.Fatal(err)
	}
	controls := make([]string, 0, 60)
	for i := range 60 {
		controls = append(controls, fmt.Sprintf("c%02d", i))
	}
	for _, tc := range []struct {
		name    string
		treated any
		control any
	}{
		{"lists", map[string]any{"units": p.treated}, map[string]any{"units": controls}},
		{"variant vs rest", map[string]any{"experiment": "journey", "variant": "on"}, "rest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out didResult
			ts.mustAs(analyst, http.StatusOK, "POST", "/v1/analyses/did", map[string]any{
				"metric": "spend", "treated": tc.treated, "control": tc.control, "rollout": "2026-03-08T00:00:00Z",
				"from": "2026-03-01T00:00:00Z", "to": "2026-03-15T00:00:00Z", "period": "day", "event_study": true,
			}, &out)
			if out.PreTrend != nil && out.PreTrend.PValue != nil {
				t.Logf("estimate %.4f [%.4f, %.4f], pre-trend p = %.3f", out.Estimate, out.CILow, out.CIHigh, *out.PreTrend.PValue)
			}
			if !(out.CILow <= p.delta && p.delta <= out.CIHigh) {
				t.Errorf("95%% CI [%g, %g] does not cover the planted effect %g", out.CILow, out.CIHigh, p.delta)
			}
			if math.Abs(out.Estimate-ref.Effect.Estimate) > 1e-9 || math.Abs(out.SE-ref.Effect.SE) > 1e-9 {
				t.Errorf("estimate %g (se %g), want %g (se %g) from did.Regress on the generated panel", out.Estimate, out.SE, ref.Effect.Estimate, ref.Effect.SE)
			}
			if out.NObs != 100*14 || out.NClusters != 100 || out.TreatedUnits != 40 || out.ControlUnits != 60 || out.RolloutPeriod != 7 || out.Periods != 14 {
				t.Errorf("n_obs %d clusters %d treated %d control %d rollout period %d periods %d; want 1400 100 40 60 7 14",
					out.NObs, out.NClusters, out.TreatedUnits, out.ControlUnits, out.RolloutPeriod, out.Periods)
			}
			if out.PreTrend == nil || !out.PreTrend.Tested || out.PreTrend.Q != 6 || *out.PreTrend.PValue < 0.05 || out.PreTrend.Warning != "" {
				t.Errorf("pre-trend test %+v: want 6 leads (-7…-2) tested and not rejected (parallel trends hold by construction)", out.PreTrend)
			}
			// 13 coefficients: −7…6 without the reference −1; the lags cover δ.
			if len(out.Events) != 13 {
				t.Fatalf("%d event-study coefficients, want 13", len(out.Events))
			}
			covered := 0
			for _, k := range out.Events {
				if k.RelTime >= 0 && k.CILow <= p.delta && p.delta <= k.CIHigh {
					covered++
				}
			}
			if covered < 6 {
				t.Errorf("only %d of 7 post-rollout coefficients cover δ = %g: %+v", covered, p.delta, out.Events)
			}
		})
	}
}

func TestDiDPreTrendWarning(t *testing.T) {
	ts := newTestServer(t)
	// Treated units catch up by 1 per day before the rollout: parallel trends fail.
	plantDiDTrend(t, ts, 1)
	var out didResult
	ts.must(http.StatusOK, "POST", "/v1/analyses/did", map[string]any{
		"metric": "spend", "treated": map[string]any{"units": []string{"t00", "t01", "t02", "t03", "t04", "t05", "t06", "t07", "t08", "t09"}},
		"control": "rest", "rollout": "2026-03-08T00:00:00Z", "from": "2026-03-01T00:00:00Z", "to": "2026-03-15T00:00:00Z", "event_study": true,
	}, &out)
	if out.PreTrend == nil || !out.PreTrend.Tested || *out.PreTrend.PValue >= 0.05 || out.PreTrend.Warning == "" {
		t.Errorf("pre-trend test %+v: want a rejection with a warning", out.PreTrend)
	}
	// Weekly periods: the rollout week is the second of two, so no lead can be tested.
	ts.must(http.StatusOK, "POST", "/v1/analyses/did", map[string]any{
		"metric": "spend", "treated": map[string]any{"units": []string{"t00", "t01"}}, "control": "rest",
		"rollout": "2026-03-08T00:00:00Z", "from": "2026-03-01T00:00:00Z", "to": "2026-03-15T00:00:00Z", "period": "week", "event_study": true,
	}, &out)
	if out.Periods != 2 || out.RolloutPeriod != 1 || out.NObs != 2*100 || out.PreTrend == nil || out.PreTrend.Tested || out.PreTrend.Note == "" {
		t.Errorf("weekly: periods %d rollout period %d n_obs %d pre-trend %+v; want 2, 1, 200, untested with a note", out.Periods, out.RolloutPeriod, out.NObs, out.PreTrend)
	}
}

func TestDiDCharts(t *testing.T) {
	ts := newTestServer(t)
	plantDiD(t, ts)
	analyst := ts.key("ana", experiment.RoleAnalyst)
	body := map[string]any{"metric": "spend", "treated": map[string]any{"units": []string{"t00", "t01", "t02"}}, "control": "rest",
		"rollout": "2026-03-08T00:00:00Z", "from": "2026-03-01T00:00:00Z", "to": "2026-03-15T00:00:00Z"}
	for _, tc := range []struct {
		query, ctype string
	}{
		{"?format=svg&chart=event_study", "image/svg+xml"},
		{"?format=svg&chart=trends", "image/svg+xml"},
		{"?chart=trends", "image/svg+xml"},
		{"?format=png", "image/png"},
		{"?format=pdf&chart=event_study", "application/pdf"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			checkChart(t, ts, analyst, "/v1/analyses/did"+tc.query, body, tc.ctype)
		})
	}
}

// checkChart posts body and checks that the answer is a well-formed chart of ctype.
func checkChart(t *testing.T, ts *tserver, key, path string, body any, ctype string) {
	t.Helper()
	resp := ts.request("POST", path, key, body, nil)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != ctype {
		t.Fatalf("status %d, content type %q, want 200 %q; body %.300s", resp.StatusCode, resp.Header.Get("Content-Type"), ctype, b)
	}
	switch ctype {
	case "image/svg+xml":
		d := xml.NewDecoder(bytes.NewReader(b))
		root := ""
		for {
			tok, err := d.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("SVG is not well-formed XML: %v", err)
			}
			if se, ok := tok.(xml.StartElement); ok && root == "" {
				root = se.Name.Local
			}
		}
		if root != "svg" {
			t.Errorf("root element %q, want svg", root)
		}
		if !bytes.Contains(b, []byte("exact")) {
			t.Errorf("the chart does not say its numbers are exact")
		}
	case "image/png":
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("not a PNG: %v", err)
		}
		if img.Bounds().Dx() < 100 || img.Bounds().Dy() < 100 {
			t.Errorf("PNG is %v", img.Bounds())
		}
	case "application/pdf":
		if !bytes.HasPrefix(b, []byte("%PDF-")) {
			t.Errorf("not a PDF: %.20q", b)
		}
	}
}

// plantUplift stores a randomized test with a planted heterogeneous effect:
// n units, half exposed to "treatment", attributes age ~ U(0, 1) and segment in
// {"a", "b"}, and one "order" event per unit with value
//
//	y = 1 + age + T·τ(age) + ε,  τ(age) = 3·age,  ε ~ N(0, 1),
//
// so the average effect is E[3·age] = 1.5 and units with a higher age gain more.
func plantUplift(t *testing.T, ts *tserver, n int) {
	t.Helper()
	ctx := context.Background()
	if _, err := ts.db.CreateMetric(ctx, "test", &experiment.Metric{Name: "revenue", EventType: "order", Aggregation: experiment.Sum}); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.db.CreateExperiment(ctx, "test", &experiment.Experiment{Key: "promo", Name: "Promo e-mail",
		Variants: []experiment.Variant{{Name: "control", Weight: 0.5}, {Name: "treatment", Weight: 0.5}}}); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	var xs []experiment.Exposure
	var evs []experiment.Event
	var attrs []store.UnitAttributes
	for i := range n {
		u := fmt.Sprintf("u%05d", i)
		treated := r.IntN(2) == 1
		v := "control"
		if treated {
			v = "treatment"
		}
		age := r.Float64()
		seg := []string{"a", "b"}[r.IntN(2)]
		y := 1 + age + r.NormFloat64()
		if treated {
			y += 3 * age
		}
		xs = append(xs, experiment.Exposure{Experiment: "promo", Unit: u, Variant: v, TS: quasiStart})
		evs = append(evs, experiment.Event{EventID: u, Unit: u, Type: "order", TS: quasiStart.Add(24 * time.Hour), Value: y})
		attrs = append(attrs, store.UnitAttributes{Unit: u, Attributes: map[string]any{"age": age, "segment": seg}})
	}
	if err := ts.db.LogExposures(ctx, xs); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ts.db.IngestEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	// Attributes go through the API in two batches (at most 10,000 each).
	ingest := ts.key("ingest", experiment.RoleIngest)
	for start := 0; start < n; start += 1000 {
		var batch []map[string]any
		for _, a := range attrs[start:min(start+1000, n)] {
			batch = append(batch, map[string]any{"unit": a.Unit, "attributes": a.Attributes})
		}
		var acc unitsAccepted
		ts.mustAs(ingest, http.StatusOK, "POST", "/v1/units", map[string]any{"units": batch}, &acc)
		if acc.Accepted != len(batch) {
			t.Fatalf("accepted %d, want %d", acc.Accepted, len(batch))
		}
	}
}

func TestUpliftPlanted(t *testing.T) {
	ts := newTestServer(t)
	plantUplift(t, ts, 2000)
	analyst := ts.key("ana", experiment.RoleAnalyst)
	for _, tc := range []struct{ learner, base string }{{"x", "trees"}, {"t", "ridge"}, {"s", "trees"}} {
		t.Run(tc.learner+"/"+tc.base, func(t *testing.T) {
			var out upliftResult
			ts.mustAs(analyst, http.StatusOK, "POST", "/v1/analyses/uplift", map[string]any{
				"experiment": "promo", "treatment": "treatment", "metric": "revenue", "features": []string{"age", "segment"},
				"learner": tc.learner, "base": tc.base, "seed": 7, "bootstrap": 100,
			}, &out)
			t.Logf("ATE %.3f [%.3f, %.3f], Qini %.3f (CI low %v), AUUC %.3f", out.ATE.Estimate, out.ATE.CILow, out.ATE.CIHigh, out.Qini, finiteOrNil(deref(out.QiniLow)), out.AUUC)
			// The planted average effect is 1.5.
			if !(out.ATE.CILow <= 1.5 && 1.5 <= out.ATE.CIHigh) {
				t.Errorf("ATE CI [%g, %g] does not cover the planted 1.5", out.ATE.CILow, out.ATE.CIHigh)
			}
			// The ranking must beat random targeting on the held-out units.
			if !(out.Qini > 0) || out.QiniLow == nil || !(*out.QiniLow > 0) {
				t.Errorf("Qini %g with CI low %v: want > 0 (the effect grows with age)", out.Qini, out.QiniLow)
			}
			if out.NTrain+out.NTest != 2000 || out.NTest != 600 || out.Control != "control" {
				t.Errorf("train %d test %d control %q; want 1400, 600, control", out.NTrain, out.NTest, out.Control)
			}
			if want := []string{"age", "segment=a", "segment=b"}; strings.Join(out.Features, ",") != strings.Join(want, ",") {
				t.Errorf("features %v, want %v", out.Features, want)
			}
			// The top decile by predicted uplift gains more than the bottom one.
			if len(out.Deciles) != 10 || out.Deciles[0].Observed == nil || out.Deciles[9].Observed == nil || !(*out.Deciles[0].Observed > *out.Deciles[9].Observed) {
				t.Errorf("deciles %+v: want the top observed uplift above the bottom", out.Deciles)
			}
		})
	}
	for _, q := range []struct{ query, ctype string }{{"?format=svg", "image/svg+xml"}, {"?format=png&chart=uplift", "image/png"}, {"?chart=uplift", "image/svg+xml"}} {
		t.Run("chart"+q.query, func(t *testing.T) {
			checkChart(t, ts, analyst, "/v1/analyses/uplift"+q.query, map[string]any{
				"experiment": "promo", "metric": "revenue", "features": []string{"age"}, "learner": "t", "base": "ridge", "bootstrap": 0}, q.ctype)
		})
	}
}

func TestQuasiBadInput(t *testing.T) {
	ts := newTestServer(t)
	plantUplift(t, ts, 200)
	ctx := context.Background()
	if _, err := ts.db.CreateMetric(ctx, "test", &experiment.Metric{Name: "orders", EventType: "order", Aggregation: experiment.Count}); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.db.UpsertUnitAttributes(ctx, []store.UnitAttributes{{Unit: "u00000", Attributes: map[string]any{"mixed": "x"}}, {Unit: "u00001", Attributes: map[string]any{"mixed": 1.0}}}); err != nil {
		t.Fatal(err)
	}
	okDiD := func(change map[string]any) map[string]any {
		b := map[string]any{"metric": "orders", "treated": map[string]any{"units": []string{"u00000"}}, "control": "rest",
			"rollout": "2026-03-08T00:00:00Z", "from": "2026-03-01T00:00:00Z", "to": "2026-03-15T00:00:00Z"}
		for k, v := range change {
			if v == nil {
				delete(b, k)
			} else {
				b[k] = v
			}
		}
		return b
	}
	okUplift := func(change map[string]any) map[string]any {
		b := map[string]any{"experiment": "promo", "metric": "revenue", "features": []string{"age"}, "learner": "t", "base": "ridge"}
		for k, v := range change {
			if v == nil {
				delete(b, k)
			} else {
				b[k] = v
			}
		}
		return b
	}
	units := func(us ...map[string]any) map[string]any { return map[string]any{"units": us} }
	for _, tc := range []struct {
		name, path string
		body       any
		status     int
		field      string
	}{
		{"did: no metric", "/v1/analyses/did", okDiD(map[string]any{"metric": nil}), 400, "metric"},
		{"did: unknown metric", "/v1/analyses/did", okDiD(map[string]any{"metric": "nope"}), 400, "metric"},
		{"did: no treated", "/v1/analyses/did", okDiD(map[string]any{"treated": nil}), 400, "treated"},
		{"did: two shapes", "/v1/analyses/did", okDiD(map[string]any{"treated": map[string]any{"units": []string{"a"}, "experiment": "promo", "variant": "control"}}), 400, "treated"},
		{"did: unknown variant", "/v1/analyses/did", okDiD(map[string]any{"treated": map[string]any{"experiment": "promo", "variant": "zzz"}}), 400, "treated.variant"},
		{"did: unknown experiment", "/v1/analyses/did", okDiD(map[string]any{"treated": map[string]any{"experiment": "zzz", "variant": "on"}}), 400, "treated.experiment"},
		{"did: empty unit", "/v1/analyses/did", okDiD(map[string]any{"treated": map[string]any{"units": []string{"a", ""}}}), 400, "treated.units[1]"},
		{"did: control word", "/v1/analyses/did", okDiD(map[string]any{"control": "others"}), 400, "control"},
		{"did: control unknown field", "/v1/analyses/did", okDiD(map[string]any{"control": map[string]any{"unitz": []string{"a"}}}), 400, "control.unitz"},
		{"did: control empty list", "/v1/analyses/did", okDiD(map[string]any{"control": map[string]any{"units": []string{}}}), 400, "control.units"},
		{"did: bad rollout", "/v1/analyses/did", okDiD(map[string]any{"rollout": "March 8"}), 400, "rollout"},
		{"did: rollout before from", "/v1/analyses/did", okDiD(map[string]any{"rollout": "2026-02-01T00:00:00Z"}), 400, "rollout"},
		{"did: no pre period", "/v1/analyses/did", okDiD(map[string]any{"rollout": "2026-03-01T12:00:00Z"}), 400, "rollout"},
		{"did: no from", "/v1/analyses/did", okDiD(map[string]any{"from": nil}), 400, "from"},
		{"did: period", "/v1/analyses/did", okDiD(map[string]any{"period": "month"}), 400, "period"},
		{"did: alpha", "/v1/analyses/did", okDiD(map[string]any{"alpha": 2}), 400, "alpha"},
		{"did: unknown field", "/v1/analyses/did", okDiD(map[string]any{"rolout": "x"}), 400, "rolout"},
		{"did: chart name", "/v1/analyses/did?format=svg&chart=qini", okDiD(nil), 400, "chart"},
		{"did: format", "/v1/analyses/did?format=gif", okDiD(nil), 400, "format"},
		{"uplift: no features", "/v1/analyses/uplift", okUplift(map[string]any{"features": nil}), 400, "features"},
		{"uplift: empty feature", "/v1/analyses/uplift", okUplift(map[string]any{"features": []string{"age", ""}}), 400, "features[1]"},
		{"uplift: twice", "/v1/analyses/uplift", okUplift(map[string]any{"features": []string{"age", "age"}}), 400, "features[1]"},
		{"uplift: absent attribute", "/v1/analyses/uplift", okUplift(map[string]any{"features": []string{"age", "height"}}), 400, "features[1]"},
		{"uplift: mixed types", "/v1/analyses/uplift", okUplift(map[string]any{"features": []string{"mixed"}}), 400, "features[0]"},
		{"uplift: learner", "/v1/analyses/uplift", okUplift(map[string]any{"learner": "z"}), 400, "learner"},
		{"uplift: base", "/v1/analyses/uplift", okUplift(map[string]any{"base": "forest"}), 400, "base"},
		{"uplift: experiment", "/v1/analyses/uplift", okUplift(map[string]any{"experiment": "zzz"}), 400, "experiment"},
		{"uplift: treatment", "/v1/analyses/uplift", okUplift(map[string]any{"treatment": "zzz"}), 400, "treatment"},
		{"uplift: same arms", "/v1/analyses/uplift", okUplift(map[string]any{"treatment": "control"}), 400, "treatment"},
		{"uplift: metric", "/v1/analyses/uplift", okUplift(map[string]any{"metric": "nope"}), 400, "metric"},
		{"uplift: test share", "/v1/analyses/uplift", okUplift(map[string]any{"test_share": 1.5}), 400, "test_share"},
		{"uplift: bootstrap", "/v1/analyses/uplift", okUplift(map[string]any{"bootstrap": -1}), 400, "bootstrap"},
		{"uplift: chart", "/v1/analyses/uplift?chart=trends", okUplift(nil), 400, "chart"},
		{"units: missing", "/v1/units", map[string]any{}, 400, "units"},
		{"units: empty unit", "/v1/units", units(map[string]any{"unit": "a"}, map[string]any{"unit": ""}), 400, "units[1].unit"},
		{"units: nested", "/v1/units", units(map[string]any{"unit": "a", "attributes": map[string]any{"geo": map[string]any{"city": "Oslo"}}}), 400, "units[0].attributes.geo"},
		{"units: unknown field", "/v1/units", units(map[string]any{"unit": "a", "attrs": map[string]any{}}), 400, "units[0].attrs"},
		{"units: wrong type", "/v1/units", units(map[string]any{"unit": 7}), 400, "units[0].unit"},
		{"units: too many", "/v1/units", map[string]any{"units": make([]map[string]any, MaxUnitBatch+1)}, 413, "units"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, b := ts.do("POST", tc.path, ts.admin, tc.body)
			if status != tc.status {
				t.Fatalf("status %d, want %d; body %s", status, tc.status, b)
			}
			if e := errorOf(t, b); !strings.HasPrefix(e.Message, tc.field+": ") {
				t.Errorf("message %q does not name %s", e.Message, tc.field)
			}
		})
	}
	// A rejected batch writes nothing.
	var n int
	if err := ts.db.SQL().QueryRow(`SELECT count(*) FROM unit_attributes WHERE unit = 'a'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("unit a stored %d times after rejected batches (%v)", n, err)
	}
}

func deref(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

func TestQuasiRoles(t *testing.T) {
	ts := newTestServer(t)
	keys := map[experiment.Role]string{}
	for _, r := range []experiment.Role{experiment.RoleViewer, experiment.RoleIngest, experiment.RoleAnalyst} {
		keys[r] = ts.key(string(r), r)
	}
	unitsBody := map[string]any{"units": []map[string]any{{"unit": "a", "attributes": map[string]any{"plan": "pro"}}}}
	for _, tc := range []struct {
		path   string
		role   experiment.Role
		body   any
		status int
	}{
		{"/v1/analyses/did", experiment.RoleViewer, map[string]any{}, http.StatusForbidden},
		{"/v1/analyses/did", experiment.RoleIngest, map[string]any{}, http.StatusForbidden},
		{"/v1/analyses/uplift", experiment.RoleViewer, map[string]any{}, http.StatusForbidden},
		{"/v1/analyses/uplift", experiment.RoleIngest, map[string]any{}, http.StatusForbidden},
		{"/v1/units", experiment.RoleViewer, unitsBody, http.StatusForbidden},
		{"/v1/units", experiment.RoleAnalyst, unitsBody, http.StatusForbidden},
		{"/v1/units", experiment.RoleIngest, unitsBody, http.StatusOK},
		{"/v1/analyses/did", "", map[string]any{}, http.StatusUnauthorized},
	} {
		t.Run(string(tc.role)+tc.path, func(t *testing.T) {
			status, b := ts.do("POST", tc.path, keys[tc.role], tc.body)
			if status != tc.status {
				t.Errorf("status %d, want %d; body %s", status, tc.status, b)
			}
		})
	}
	// The analyst reaches the handler (400 for the empty body, not 403).
	if status, _ := ts.do("POST", "/v1/analyses/did", keys[experiment.RoleAnalyst], map[string]any{}); status != http.StatusBadRequest {
		t.Errorf("analyst: status %d, want 400", status)
	}
}
