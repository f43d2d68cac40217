package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/api"
	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/store"
)

const pipelineKey = "lift_PIPELINETESTKEYPIPELINETEST00"

// pipelineServer is the HTTP API over a fresh DuckDB file, for comparing the
// CLI's answers with the API's on the same data.
func pipelineServer(t *testing.T) (*store.DB, *httptest.Server) {
	t.Helper()
	ctx := context.Background()
	sopt := store.DefaultOptions()
	sopt.Logger = slog.New(slog.DiscardHandler)
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "lift.duckdb"), sopt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.EnsureAdminKey(ctx, pipelineKey); err != nil {
		t.Fatal(err)
	}
	opt := api.DefaultOptions()
	opt.Store, opt.Logger = db, sopt.Logger
	srv, err := api.New(opt)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		db.Close()
	})
	return db, hs
}

// postJSON posts body with the admin key and decodes a 200 answer into a map.
func postJSON(t *testing.T, hs *httptest.Server, path string, body any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", hs.URL+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+pipelineKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %d %s", path, resp.StatusCode, rb)
	}
	var out map[string]any
	if err := json.Unmarshal(rb, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// sameFields reports the keys of want whose values differ in got (as JSON).
func sameFields(t *testing.T, what string, got, want map[string]any) {
	t.Helper()
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("%s: the API has no %q", what, k)
			continue
		}
		gb, _ := json.Marshal(g)
		wb, _ := json.Marshal(w)
		if !bytes.Equal(gb, wb) {
			t.Errorf("%s: %q differs:\n CLI %s\n API %s", what, k, wb, gb)
		}
	}
}

// csPanel is a small staggered panel: 15 units observed in periods 0…5, units
// 0–3 first treated in period 2, 4–7 in 3, 8–10 in 5, 11–14 never, with
//
//	y_it = 0.5·i + 0.3·(t+1) + 2·sin(1.7·i + 2.3·(t+1) + 0.1·i·(t+1)) + τ_g(t),
//	τ_g(t) = (1 + 0.5·(t−g))·(g+1)/3 for t ≥ g,
//
// the panel of the cs.py script in docs/did.md (there periods are
// numbered 1…6).
func csPanel() (cohort []int, y [][]float64) {
	for i := range 15 {
		g := -1
		switch {
		case i < 4:
			g = 2
		case i < 8:
			g = 3
		case i < 11:
			g = 5
		}
		cohort = append(cohort, g)
		row := make([]float64, 6)
		for t := range 6 {
			t1 := float64(t + 1)
			row[t] = 0.5*float64(i) + 0.3*t1 + 2*math.Sin(1.7*float64(i)+2.3*t1+0.1*float64(i)*t1)
			if g >= 0 && t >= g {
				row[t] += (1 + 0.5*float64(t-g)) * float64(g+1) / 3
			}
		}
		y = append(y, row)
	}
	return cohort, y
}

// TestDiDStaggeredReference: "lift did" on a staggered panel detects the
// staggered timing, warns about the TWFE results and reports Callaway &
// Sant'Anna's group-time effects and aggregations, equal to an independent
// implementation of the paper's formulas (not-yet-treated controls, varying
// base period, analytic influence-function standard errors, did::aggte's
// weight influence functions), written in Python/pandas:
//
//	/usr/bin/python3 cs.py   (numpy 1.24, pandas 1.5; the script is in docs/did.md, "Checking the staggered estimator")
//
// Its values are pasted below with the periods shifted to 0…5. R's did package
// is not installed here; the Python code follows did::att_gt and did::aggte.
func TestDiDStaggeredReference(t *testing.T) {
	cohort, y := csPanel()
	var b strings.Builder
	b.WriteString("unit,period,y,treated,post\n")
	for i, row := range y {
		for p, v := range row {
			fmt.Fprintf(&b, "u%02d,%d,%s,%s,%s\n", i, p, strconv.FormatFloat(v, 'g', -1, 64), boolStr(cohort[i] >= 0), boolStr((cohort[i] >= 0 && p >= cohort[i]) || (cohort[i] < 0 && p >= 2)))
		}
	}
	data := writeTemp(t, "staggered.csv", b.String())
	code, out, errs := runQuasi(t, "did", "--data", data, "--unit", "unit", "--time", "period", "--outcome", "y", "--treated", "treated", "--post", "post", "--event-study")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var got didOutput
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if !got.StaggeredTiming || !strings.Contains(got.Warning, "staggered") || !strings.Contains(got.Warning, "Callaway") || got.Staggered == nil {
		t.Fatalf("staggered timing %v, warning %q, staggered %v: want the timing detected, a warning pointing to Callaway & Sant'Anna, and its result", got.StaggeredTiming, got.Warning, got.Staggered != nil)
	}
	if fmt.Sprint(got.Cohorts) != "[2 3 5]" {
		t.Errorf("cohorts %v, want [2 3 5]", got.Cohorts)
	}
	cs := got.Staggered
	// From cs.py: {g, t, ATT(g,t), se}, g and t minus 1.
	wantATT := [][4]float64{
		{2, 1, -0.5254691340750204, 1.6532751449021177},
		{2, 2, 1.446894164993124, 1.5481852350417904},
		{2, 3, 1.7758675858831094, 1.0119601424597031},
		{2, 4, 2.258407968824561, 1.128544114879054},
		{2, 5, 2.879247397513158, 1.6854256254087465},
		{3, 1, -0.13613402813585723, 1.551979160167421},
		{3, 2, 0.7715317352129617, 1.7074134708900883},
		{3, 3, 0.13863042399399217, 1.7759650431282465},
		{3, 4, 2.3253694380873444, 0.4556855672756945},
		{3, 5, 1.0256696781540415, 1.7188436330397348},
		{5, 1, 0.5294362753367972, 1.9303443184414324},
		{5, 2, -0.27239431659911195, 1.9645608037764737},
		{5, 3, -0.5757933685872052, 2.120784518294477},
		{5, 4, 0.9205033806717802, 2.103980101172024},
		{5, 5, 0.9199330345787458, 2.0077839570077174},
	}
	const tol = 1e-9
	close := func(what string, est, se, wantEst, wantSE float64) {
		t.Helper()
		if math.Abs(est-wantEst) > tol || math.Abs(se-wantSE) > tol {
			t.Errorf("%s = %.12g (se %.12g), want %.12g (se %.12g) from cs.py", what, est, se, wantEst, wantSE)
		}
	}
	if len(cs.ATT) != len(wantATT) {
		t.Fatalf("%d group-time effects, want %d", len(cs.ATT), len(wantATT))
	}
	for k, w := range wantATT {
		a := cs.ATT[k]
		if a.Group != int(w[0]) || a.Time != int(w[1]) {
			t.Fatalf("cell %d is ATT(%d,%d), want ATT(%g,%g)", k, a.Group, a.Time, w[0], w[1])
		}
		close(fmt.Sprintf("ATT(%d,%d)", a.Group, a.Time), a.Estimate, a.SE, w[2], w[3])
	}
	close("simple", cs.Simple.Estimate, cs.Simple.SE, 1.6180692172107602, 0.769842161613166)
	wantDyn := map[int][2]float64{
		-4: {0.5294362753367972, 1.9303443184414324}, -3: {-0.27239431659911195, 1.9645608037764737},
		-2: {-0.32455945975786354, 1.1761776220917288}, -1: {0.34052368605155503, 1.0645889161851068},
		0: {0.8274452236077001, 1.0598963535306185}, 1: {2.0506185119852267, 0.5195258316192555},
		2: {1.6420388234893013, 0.8856781801259983}, 3: {2.879247397513158, 1.6854256254087465},
	}
	if len(cs.Dynamic) != len(wantDyn) {
		t.Errorf("%d dynamic effects, want %d", len(cs.Dynamic), len(wantDyn))
	}
	for _, d := range cs.Dynamic {
		w := wantDyn[d.RelTime]
		close(fmt.Sprintf("θ(e=%d)", d.RelTime), d.Estimate, d.SE, w[0], w[1])
	}
	close("dynamic overall", cs.DynamicOverall.Estimate, cs.DynamicOverall.SE, 1.8498374891488465, 0.8106112269556738)
	wantGroup := map[int][2]float64{2: {2.090104279303488, 1.0664592742165035}, 3: {1.1632231800784594, 1.1226396281250228}, 5: {0.9199330345787458, 2.0077839570077174}}
	if len(cs.Group) != 3 {
		t.Errorf("%d group effects, want 3", len(cs.Group))
	}
	for _, g := range cs.Group {
		w := wantGroup[g.Group]
		close(fmt.Sprintf("θ(g=%d)", g.Group), g.Estimate, g.SE, w[0], w[1])
	}
	close("group overall", cs.GroupOverall.Estimate, cs.GroupOverall.SE, 1.4339189946603659, 0.8815131380344099)

	// The chart of the staggered result.
	chart := filepath.Join(t.TempDir(), "cs.svg")
	if code, _, errs := runQuasi(t, "did", "--data", data, "--unit", "unit", "--time", "period", "--outcome", "y", "--treated", "treated", "--post", "post", "--chart", chart, "--format", "text"); code != 0 {
		t.Fatalf("--chart: exit %d: %s", code, errs)
	}
	if b, err := readFileString(chart); err != nil || !strings.Contains(b, "<svg") || !strings.Contains(b, "Callaway") {
		t.Errorf("chart %s: %v, %.200s; want an SVG of the Callaway & Sant'Anna event study", chart, err, b)
	}
}

// TestDiDCLIMatchesAPI: "lift did" on a CSV of a panel and POST
// /v1/analyses/did on the same panel built from stored events answer the
// same numbers, for a single rollout and for staggered cohorts: one pipeline.
func TestDiDCLIMatchesAPI(t *testing.T) {
	ctx := context.Background()
	db, hs := pipelineServer(t)
	if _, err := db.CreateMetric(ctx, "test", &experiment.Metric{Name: "spend", EventType: "purchase", Aggregation: experiment.Sum}); err != nil {
		t.Fatal(err)
	}
	cohort, y := csPanel()
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var evs []experiment.Event
	for i, row := range y {
		for p, v := range row {
			evs = append(evs, experiment.Event{EventID: fmt.Sprintf("u%02d-%d", i, p), Unit: fmt.Sprintf("u%02d", i), Type: "purchase", TS: start.AddDate(0, 0, p).Add(time.Hour), Value: v})
		}
	}
	if _, _, err := db.IngestEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	units := func(g int) []string {
		var out []string
		for i, c := range cohort {
			if c == g {
				out = append(out, fmt.Sprintf("u%02d", i))
			}
		}
		return out
	}
	day := func(p int) string { return start.AddDate(0, 0, p).Format(time.RFC3339) }
	for _, tc := range []struct {
		name     string
		cohortOf func(i int) int // first treated period of unit i, -1 never
		body     map[string]any
	}{
		{"single rollout", func(i int) int {
			if cohort[i] == 2 {
				return 2
			}
			return -1
		}, map[string]any{"treated": map[string]any{"units": units(2)}, "rollout": day(2), "control": map[string]any{"units": units(-1)}}},
		{"staggered cohorts", func(i int) int { return cohort[i] }, map[string]any{"cohorts": []map[string]any{
			{"rollout": day(2), "units": units(2)}, {"rollout": day(3), "units": units(3)}, {"rollout": day(5), "units": units(5)},
		}, "control": map[string]any{"units": units(-1)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			b.WriteString("unit,period,y,treated,post\n")
			first := 99
			for i := range y {
				if g := tc.cohortOf(i); g >= 0 {
					first = min(first, g)
				}
			}
			for i, row := range y {
				g := tc.cohortOf(i)
				if g < 0 && cohort[i] >= 0 {
					continue // in neither group
				}
				for p, v := range row {
					post := (g >= 0 && p >= g) || (g < 0 && p >= first)
					fmt.Fprintf(&b, "u%02d,%d,%s,%s,%s\n", i, p, strconv.FormatFloat(v, 'g', -1, 64), boolStr(g >= 0), boolStr(post))
				}
			}
			data := writeTemp(t, "panel.csv", b.String())
			code, out, errs := runQuasi(t, "did", "--data", data, "--unit", "unit", "--time", "period", "--outcome", "y", "--treated", "treated", "--post", "post", "--event-study", "--staggered")
			if code != 0 {
				t.Fatalf("lift did: exit %d: %s", code, errs)
			}
			var cli map[string]any
			if err := json.Unmarshal([]byte(out), &cli); err != nil {
				t.Fatal(err)
			}
			delete(cli, "n_missing_outcome")
			body := map[string]any{"metric": "spend", "from": day(0), "to": day(6), "event_study": true, "staggered": true}
			for k, v := range tc.body {
				body[k] = v
			}
			got := postJSON(t, hs, "/v1/analyses/did", body)
			sameFields(t, "did", got, cli)
			if tc.name == "staggered cohorts" && got["staggered_timing"] != true {
				t.Errorf("staggered_timing %v, want true", got["staggered_timing"])
			}
		})
	}
}

// TestUpliftCLIMatchesAPI: "lift uplift" on a CSV and POST /v1/analyses/uplift
// on the same units stored as exposures, events and attributes answer the same
// model, evaluation and intervals: one pipeline, the same seeds.
func TestUpliftCLIMatchesAPI(t *testing.T) {
	ctx := context.Background()
	db, hs := pipelineServer(t)
	if _, err := db.CreateMetric(ctx, "test", &experiment.Metric{Name: "revenue", EventType: "order", Aggregation: experiment.Sum}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateExperiment(ctx, "test", &experiment.Experiment{Key: "promo", Name: "Promo",
		Variants: []experiment.Variant{{Name: "control", Weight: 0.5}, {Name: "treatment", Weight: 0.5}}}); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	r := rand.New(rand.NewPCG(3, 4))
	var xs []experiment.Exposure
	var evs []experiment.Event
	var attrs []store.UnitAttributes
	var b strings.Builder
	b.WriteString("unit,arm,revenue,age,segment\n")
	for i := range 600 {
		u := fmt.Sprintf("u%05d", i) // sorted as the store returns them
		arm := []string{"control", "treatment"}[r.IntN(2)]
		age, seg := r.Float64(), []string{"a", "b"}[r.IntN(2)]
		y := 1 + age + r.NormFloat64()
		if arm == "treatment" {
			y += 3 * age
		}
		xs = append(xs, experiment.Exposure{Experiment: "promo", Unit: u, Variant: arm, TS: start})
		evs = append(evs, experiment.Event{EventID: u, Unit: u, Type: "order", TS: start.Add(time.Hour), Value: y})
		attrs = append(attrs, store.UnitAttributes{Unit: u, Attributes: map[string]any{"age": age, "segment": seg}})
		fmt.Fprintf(&b, "%s,%s,%s,%s,%s\n", u, arm, strconv.FormatFloat(y, 'g', -1, 64), strconv.FormatFloat(age, 'g', -1, 64), seg)
	}
	if err := db.LogExposures(ctx, xs); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.IngestEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpsertUnitAttributes(ctx, attrs); err != nil {
		t.Fatal(err)
	}
	data := writeTemp(t, "uplift.csv", b.String())
	for _, learner := range []string{"x", "t"} {
		t.Run(learner, func(t *testing.T) {
			code, out, errs := runQuasi(t, "uplift", "--data", data, "--treatment", "arm", "--outcome", "revenue", "--features", "age,segment",
				"--learner", learner, "--seed", "7", "--bootstrap", "50")
			if code != 0 {
				t.Fatalf("lift uplift: exit %d: %s", code, errs)
			}
			var cli map[string]any
			if err := json.Unmarshal([]byte(out), &cli); err != nil {
				t.Fatal(err)
			}
			got := postJSON(t, hs, "/v1/analyses/uplift", map[string]any{"experiment": "promo", "metric": "revenue", "features": []string{"age", "segment"},
				"learner": learner, "seed": 7, "bootstrap": 50})
			sameFields(t, "uplift", got, cli)
		})
	}
}

func readFileString(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}
