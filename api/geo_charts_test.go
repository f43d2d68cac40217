package api

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/liftlab/lift/analysis/synth"
	"github.com/liftlab/lift/reports"
)

// geoNoisyRows is a seeded panel in long form: 10 donor markets m0…m9 with
// their own levels and trends and noise, two test markets (t1 = ½ m0 + ½ m1,
// t2 = ¼ m2 + ¾ m3, each with its own noise) that gain 5 from period 21 of 28.
func geoNoisyRows() []map[string]any {
	r := rand.New(rand.NewPCG(23, 2))
	const T = 28
	y := map[string][]float64{}
	var names []string
	for j := range 10 {
		n := fmt.Sprintf("m%d", j)
		names = append(names, n)
		level, slope := 50+10*float64(j), 0.3*float64(j%4)
		for t := range T {
			y[n] = append(y[n], level+slope*float64(t)+3*math.Sin(float64(t+j)/3)+r.NormFloat64())
		}
	}
	mix := map[string][2]float64{"t1": {0.5, 0.5}, "t2": {0.25, 0.75}}
	for _, tr := range []string{"t1", "t2"} {
		a, b := "m0", "m1"
		if tr == "t2" {
			a, b = "m2", "m3"
		}
		for t := range T {
			v := mix[tr][0]*y[a][t] + mix[tr][1]*y[b][t] + 0.5*r.NormFloat64()
			if t >= 20 {
				v += 5
			}
			y[tr] = append(y[tr], v)
		}
		names = append(names, tr)
	}
	var rows []map[string]any
	for _, n := range names {
		for t := range T {
			rows = append(rows, map[string]any{"unit": n, "period": fmt.Sprintf("2026-W%02d", t+1), "value": y[n][t]})
		}
	}
	return rows
}

// geoPanelOf builds the panel of rows as the handler does.
func geoPanelOf(t *testing.T, rows []map[string]any) synth.Panel {
	t.Helper()
	var u, p []string
	var y []float64
	for _, r := range rows {
		u, p, y = append(u, r["unit"].(string)), append(p, r["period"].(string)), append(y, r["value"].(float64))
	}
	pn, err := synth.FromLong(u, p, y)
	if err != nil {
		t.Fatal(err)
	}
	return pn
}

// TestGeoChartsFromTheResult: each chart GeoChart draws carries the numbers
// of the report's JSON (every period's treated and synthetic values, the
// effect path and its conformal intervals, the weights), and the placebo
// chart the gaps whose post/pre RMSPE ratios the JSON ranks; the charts the
// route answers say the same in their labels (units, weights to 3 decimals,
// the first treated period, the number of placebos).
func TestGeoChartsFromTheResult(t *testing.T) {
	rows := geoNoisyRows()
	p := geoPanelOf(t, rows)
	o := synth.Options{Start: 20, Conformal: true, Placebo: true, Alpha: 0.05}
	o.Treated, _, _ = synth.UnitIndexes(p, []string{"t1", "t2"})
	rep, err := synth.Run(p, o)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(rep)
	var js struct {
		Average struct {
			Unit    string `json:"unit"`
			Weights []struct {
				Unit   string  `json:"unit"`
				Weight float64 `json:"weight"`
			} `json:"weights"`
			Path []struct {
				Period    string                        `json:"period"`
				Treated   float64                       `json:"treated"`
				Synthetic float64                       `json:"synthetic"`
				Effect    float64                       `json:"effect"`
				Interval  *struct{ Low, High *float64 } `json:"interval"`
			} `json:"path"`
			Placebo struct {
				N      int `json:"n_placebos"`
				Ratios []struct {
					Unit   string  `json:"unit"`
					Weight float64 `json:"weight"`
				} `json:"placebo_ratios"`
			} `json:"placebo"`
		} `json:"average"`
	}
	if err := json.Unmarshal(b, &js); err != nil {
		t.Fatal(err)
	}
	a := js.Average
	chart := func(name string) reports.Chart {
		c, err := GeoChart(rep, name, "sales")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	sp := chart("synthetic").(*reports.SynthPath)
	ef := chart("effect").(*reports.SynthEffect)
	pl := chart("placebo").(*reports.PlaceboGaps)
	wc := chart("weights").(*reports.SynthWeights)
	if len(sp.Periods) != 28 || sp.Start != 20 || sp.Periods[20] != "2026-W21" || len(a.Path) != 28 {
		t.Fatalf("periods %v start %d; the JSON has %d", sp.Periods, sp.Start, len(a.Path))
	}
	for i, pt := range a.Path {
		if sp.Periods[i] != pt.Period || sp.Treated[i] != pt.Treated || sp.Synthetic[i] != pt.Synthetic || ef.Effect[i] != pt.Effect || pl.Treated[i] != pt.Effect {
			t.Errorf("period %d: charts %s %g %g %g %g, JSON %+v", i, sp.Periods[i], sp.Treated[i], sp.Synthetic[i], ef.Effect[i], pl.Treated[i], pt)
		}
		if i < 20 {
			continue
		}
		iv := pt.Interval
		if iv == nil || iv.Low == nil || iv.High == nil || ef.Low[i-20] == nil || ef.High[i-20] == nil || *ef.Low[i-20] != *iv.Low || *ef.High[i-20] != *iv.High {
			t.Errorf("period %s: band %v %v, JSON interval %+v", pt.Period, ef.Low[i-20], ef.High[i-20], iv)
		}
	}
	if len(wc.Weights) != len(a.Weights) || len(a.Weights) == 0 {
		t.Fatalf("weights chart %+v, JSON %+v", wc.Weights, a.Weights)
	}
	for i, w := range a.Weights {
		if wc.Weights[i].Unit != w.Unit || wc.Weights[i].Weight != w.Weight {
			t.Errorf("weight %d: chart %+v, JSON %+v", i, wc.Weights[i], w)
		}
	}
	// The placebo chart's gaps are the fits the JSON ranked: each donor's
	// post/pre RMSPE ratio, recomputed from its drawn gaps.
	ratio := map[string]float64{}
	for _, r := range a.Placebo.Ratios {
		ratio[r.Unit] = r.Weight
	}
	if len(pl.Donors) != a.Placebo.N || a.Placebo.N != 10 {
		t.Fatalf("placebo chart has %d donors, the JSON %d placebos (want 10)", len(pl.Donors), a.Placebo.N)
	}
	rms := func(v []float64) float64 {
		s := 0.0
		for _, x := range v {
			s += x * x
		}
		return math.Sqrt(s / float64(len(v)))
	}
	for _, d := range pl.Donors {
		got := rms(d.Gaps[20:]) / rms(d.Gaps[:20])
		if want, ok := ratio[d.Unit]; !ok || math.Abs(got-want) > 1e-9*want {
			t.Errorf("placebo %s: ratio of the drawn gaps %g, JSON %g", d.Unit, got, want)
		}
	}

	// The route's SVGs, from the same request, label what the JSON says.
	ts := newTestServer(t)
	body := map[string]any{"rows": rows, "treated": []string{"t1", "t2"}, "start": "2026-W21", "outcome": "sales", "per_market": false}
	var res geoResult
	ts.must(http.StatusOK, "POST", "/v1/analyses/geo", body, &res)
	if res.Average.Unit != a.Unit || len(res.Average.Weights) != len(a.Weights) {
		t.Fatalf("the route's fit %q %+v differs from Run's %q", res.Average.Unit, res.Average.Weights, a.Unit)
	}
	svg := func(name string) string {
		st, b := ts.do("POST", "/v1/analyses/geo?format=svg&chart="+name, ts.admin, body)
		if st != http.StatusOK || !strings.Contains(string(b), "<svg") {
			t.Fatalf("chart %s: %d %.200s", name, st, b)
		}
		return htmlText(string(b))
	}
	for name, wants := range map[string][]string{
		"synthetic": {"Synthetic control: " + a.Unit, "synthetic " + a.Unit, "intervention: first treated period 2026-W21", ">sales<"},
		"effect":    {"Effect on sales: " + a.Unit + " − synthetic, conformal 95% CI", "conformal 95% CI per period"},
		"placebo":   {"Placebo gaps: " + a.Unit + " and 10 donors, each fitted as if treated"},
		"weights":   {"Donor weights of synthetic " + a.Unit},
	} {
		s := svg(name)
		for _, w := range wants {
			if !strings.Contains(s, w) {
				t.Errorf("chart %s lacks %q", name, w)
			}
		}
		if name == "weights" {
			for _, w := range res.Average.Weights {
				if !strings.Contains(s, ">"+w.Unit+"<") || !strings.Contains(s, " "+strconv.FormatFloat(w.Weight, 'f', 3, 64)+" ") {
					t.Errorf("the weights chart lacks %s at %.3f", w.Unit, w.Weight)
				}
			}
		}
	}
	for _, c := range []struct {
		query, field string
	}{{"format=svg&chart=map", "chart"}, {"format=gif", "format"}, {"format=html&chart=weights", "chart"}} {
		st, b := ts.do("POST", "/v1/analyses/geo?"+c.query, ts.admin, body)
		if e := errorOf(t, b); st != http.StatusBadRequest || !strings.HasPrefix(e.Message, c.field+":") {
			t.Errorf("?%s: %d %s, want 400 naming %s", c.query, st, b, c.field)
		}
	}
	noPlacebo := map[string]any{"rows": rows, "treated": []string{"t1"}, "start": "2026-W21", "placebo": false, "conformal": false}
	if st, b := ts.do("POST", "/v1/analyses/geo?format=png&chart=placebo", ts.admin, noPlacebo); st != http.StatusBadRequest || !strings.HasPrefix(errorOf(t, b).Message, "placebo:") {
		t.Errorf("the placebo chart without the placebo test: %d %s, want 400 naming placebo", st, b)
	}
}

// TestGeoPageShowsTheJSON renders POST /v1/analyses/geo?format=html in
// Debian's headless Chromium and checks every number of its tables (each
// fit's effect, cumulative effect, lift, conformal and placebo p-values,
// ranks and intervals, R² and RMSPE; the weights; the path with its
// intervals) against the JSON answer to the same request, and that the four
// charts are inlined. A screenshot is saved (LIFT_TEST_ARTIFACTS chooses the
// folder).
func TestGeoPageShowsTheJSON(t *testing.T) {
	browse := chromium(t)
	if browse == nil {
		t.Skip("chromium not installed (apt-get install chromium; LIFT_REQUIRE_CHROMIUM=1 makes this a failure)")
	}
	ts := newTestServer(t)
	body := map[string]any{"rows": geoNoisyRows(), "treated": []string{"t1", "t2"}, "start": "2026-W21", "outcome": "sales"}
	var res geoResult
	ts.must(http.StatusOK, "POST", "/v1/analyses/geo", body, &res)
	st, page := ts.do("POST", "/v1/analyses/geo?format=html", ts.admin, body)
	if st != http.StatusOK {
		t.Fatalf("format=html: %d %s", st, page)
	}
	// Chromium cannot POST: it loads the answer from a server of its own.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	}))
	defer srv.Close()
	dom := htmlText(string(browse("--dump-dom", srv.URL+"/geo.html")))
	if n := strings.Count(dom, "<svg"); n != 4 {
		t.Errorf("the page has %d charts, want 4", n)
	}
	row := func(re string) [][]string {
		var out [][]string
		for _, m := range regexp.MustCompile(`(?s)<tr data-`+re+`="([^"]+)"[^>]*>(.*?)</tr>`).FindAllStringSubmatch(dom, -1) {
			cells := []string{m[1]}
			for _, c := range cellRE.FindAllStringSubmatch(m[2], -1) {
				cells = append(cells, tagRE.ReplaceAllString(c[1], ""))
			}
			out = append(out, cells)
		}
		return out
	}
	one := func(where, cell string, want float64) {
		ns := numbers(cell)
		if len(ns) != 1 {
			t.Errorf("%s: cell %q", where, cell)
			return
		}
		agree(t, where, ns[0], want)
	}
	// "[lo, hi]", −∞ or +∞ for a side the JSON leaves unbounded (null).
	set := func(where, cell string, iv synth.Interval) {
		lo, hi, ok := strings.Cut(strings.Trim(cell, "[]"), ", ")
		if !ok || iv.Empty {
			t.Errorf("%s: cell %q, JSON interval %+v", where, cell, iv)
			return
		}
		for _, side := range []struct {
			name, text, inf string
			v               *float64
		}{{"low", lo, "−∞", iv.Low}, {"high", hi, "+∞", iv.High}} {
			switch {
			case side.v == nil && side.text != side.inf:
				t.Errorf("%s %s: the page shows %q, the JSON is unbounded", where, side.name, side.text)
			case side.v != nil:
				one(where+" "+side.name, side.text, *side.v)
			}
		}
	}
	ests := append([]synth.Estimate{res.Average}, res.Markets...)
	fits := row("unit")
	if len(ests) != 3 || len(fits) != 3 {
		t.Fatalf("the page has %d fits, the JSON %d (want 3: the average and 2 markets)", len(fits), len(ests))
	}
	for i, e := range ests {
		c := fits[i]
		where := "fit " + e.Unit
		// unit, unit, effect, cumulative, lift, conformal p, conformal interval, placebo p, rank, placebo interval, RMSPE, R²
		if len(c) != 12 || c[0] != e.Unit {
			t.Errorf("%s: row %q", where, c)
			continue
		}
		one(where+" effect", c[2], e.Effect)
		one(where+" cumulative", c[3], e.Cumulative)
		one(where+" lift", c[4], e.Lift)
		agreeP(t, where+" conformal p", c[5], e.Conformal.PValue)
		set(where+" conformal interval", c[6], e.Conformal.Interval)
		agreeP(t, where+" placebo p", c[7], e.Placebo.PValue)
		if c[8] != fmt.Sprintf("%d of %d", e.Placebo.Rank, e.Placebo.N+1) {
			t.Errorf("%s: rank %q, JSON %d of %d", where, c[8], e.Placebo.Rank, e.Placebo.N+1)
		}
		set(where+" placebo interval", c[9], e.Placebo.Interval)
		one(where+" RMSPE", c[10], e.PreRMSPE)
		one(where+" R²", c[11], e.R2)
	}
	donors := row("donor")
	n := 0
	for _, e := range ests {
		for _, w := range e.Weights {
			if n >= len(donors) || donors[n][0] != w.Unit {
				t.Fatalf("weight %d of %s: the page has %q, the JSON %s", n, e.Unit, donors[min(n, len(donors)-1)], w.Unit)
			}
			one(e.Unit+" weight of "+w.Unit, donors[n][2], w.Weight)
			n++
		}
	}
	if n != len(donors) {
		t.Errorf("the page lists %d weights, the JSON %d", len(donors), n)
	}
	path := row("period")
	post := res.Average.Path[res.NPre:]
	if len(path) != len(post) || len(post) != 8 {
		t.Fatalf("the page's path has %d periods, the JSON %d (want 8)", len(path), len(post))
	}
	for i, pt := range post {
		c := path[i]
		where := "period " + pt.Period
		if c[0] != pt.Period || len(c) != 7 {
			t.Errorf("%s: row %q", where, c)
			continue
		}
		one(where+" treated", c[2], pt.Treated)
		one(where+" synthetic", c[3], pt.Synthetic)
		one(where+" effect", c[4], pt.Effect)
		agreeP(t, where+" p", c[5], *pt.PValue)
		set(where+" interval", c[6], *pt.Interval)
	}
	screenshotSized(t, browse, srv.URL+"/geo.html", "geo.png", 3400)
}
