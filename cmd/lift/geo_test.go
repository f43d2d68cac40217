package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/liftlab/lift/internal/refdata"
)

// TestGeoProp99 runs "lift geo" on the Proposition 99 panel: the outcome-only
// synthetic California of analysis/synth's TestProp99OutcomeOnly (scipy
// SLSQP: Utah 0.393908, Montana 0.231840, Nevada 0.204923, Connecticut
// 0.109090, New Hampshire 0.045429, Colorado 0.014811; gap in 2000
// −26.596643), with the conformal and placebo inference present and the text
// format naming every section.
func TestGeoProp99(t *testing.T) {
	data := refdata.File(t, "california-prop99.csv")
	base := []string{"geo", "--data", data, "--unit", "State", "--time", "Year", "--outcome", "PacksPerCapita", "--treated", "California", "--start", "1989"}
	code, stdout, stderr := runQuasi(t, base...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var out struct {
		NUnits  int    `json:"n_units"`
		Start   string `json:"start"`
		NPre    int    `json:"n_pre"`
		Average struct {
			Weights []struct {
				Unit   string
				Weight float64
			}
			Path []struct {
				Period string
				Effect float64
				PValue *float64 `json:"p_value"`
			}
			Conformal *struct {
				PValue float64 `json:"p_value"`
			}
			Placebo *struct {
				N int `json:"n_placebos"`
			}
		}
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	if out.NUnits != 39 || out.Start != "1989" || out.NPre != 19 {
		t.Errorf("units %d, start %q, pre %d; want 39, 1989, 19", out.NUnits, out.Start, out.NPre)
	}
	want := map[string]float64{"Utah": 0.393908, "Montana": 0.231840, "Nevada": 0.204923, "Connecticut": 0.109090, "New Hampshire": 0.045429, "Colorado": 0.014811}
	if len(out.Average.Weights) != len(want) {
		t.Errorf("weights %v", out.Average.Weights)
	}
	for _, w := range out.Average.Weights {
		if math.Abs(w.Weight-want[w.Unit]) > 1e-6 {
			t.Errorf("%s: %g, scipy %g", w.Unit, w.Weight, want[w.Unit])
		}
	}
	last := out.Average.Path[len(out.Average.Path)-1]
	if last.Period != "2000" || math.Abs(last.Effect+26.596643) > 1e-4 || last.PValue == nil {
		t.Errorf("2000: %+v", last)
	}
	if out.Average.Conformal == nil || out.Average.Placebo == nil || out.Average.Placebo.N != 38 {
		t.Errorf("inference missing: %+v %+v", out.Average.Conformal, out.Average.Placebo)
	}
	code, text, stderr := runQuasi(t, append(base, "--format", "text", "--method", "augmented")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, s := range []string{"Synthetic control (augmented)", "conformal: p", "placebo: post/pre RMSPE ratio", "pre-period RMSPE", "ridge λ", "Utah", "2000"} {
		if !strings.Contains(text, s) {
			t.Errorf("text output lacks %q:\n%s", s, text)
		}
	}
}

// TestGeoMarkets runs two test markets on a small panel built from lines (no
// noise: the markets are exact averages of donors, with +10 from period 6),
// and checks the average, the per-market fits and that bad input names its
// flag.
func TestGeoMarkets(t *testing.T) {
	var b strings.Builder
	b.WriteString("market,day,sales\n")
	level := map[string]float64{"a": 10, "b": 20, "c": 30, "d": 40, "t1": 15, "t2": 35}
	slope := map[string]float64{"a": 1, "b": 3, "c": 2, "d": 4, "t1": 2, "t2": 3}
	for day := 1; day <= 8; day++ {
		for _, m := range []string{"a", "b", "c", "d", "t1", "t2"} {
			v := level[m] + slope[m]*float64(day) + float64(day%3)*level[m]/10
			if (m == "t1" || m == "t2") && day >= 6 {
				v += 10
			}
			b.WriteString(m + "," + strconv.Itoa(day) + "," + strconv.FormatFloat(v, 'g', -1, 64) + "\n")
		}
	}
	path := writeTemp(t, "geo.csv", b.String())
	args := []string{"geo", "--data", path, "--unit", "market", "--time", "day", "--outcome", "sales", "--treated", "t1, t2", "--start", "6", "--no-conformal", "--no-placebo"}
	code, stdout, stderr := runQuasi(t, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var out struct {
		Treated []string
		Average struct{ Effect, PreRMSPE float64 }
		Markets []struct {
			Unit     string
			Effect   float64
			PreRMSPE float64 `json:"pre_rmspe"`
		}
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatal(err)
	}
	// t1 is the midpoint of a and b (level 15, slope 2, the day%3 term
	// 1.5 = (1 + 2)/2), t2 of c and d: exact fits, so each effect is the
	// planted 10.
	if len(out.Markets) != 2 {
		t.Fatalf("markets %+v", out.Markets)
	}
	for _, m := range out.Markets {
		if math.Abs(m.Effect-10) > 1e-6 || m.PreRMSPE > 1e-6 {
			t.Errorf("%s: effect %g, pre RMSPE %g; want 10, 0", m.Unit, m.Effect, m.PreRMSPE)
		}
	}
	if math.Abs(out.Average.Effect-10) > 1e-6 {
		t.Errorf("average effect %g, want 10", out.Average.Effect)
	}
	for _, c := range []struct {
		name, flag string
		args       []string
	}{
		{"unknown market", "--treated", []string{"--treated", "zz"}},
		{"start too late", "--start", []string{"--start", "99"}},
		{"start too early", "--start", []string{"--start", "1"}},
		{"bad method", "--method", []string{"--method", "lasso"}},
		{"bad alpha", "--alpha", []string{"--alpha", "2"}},
		{"no outcome column", "--outcome", []string{"--outcome", "revenue"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := runQuasi(t, append(append([]string{}, args...), c.args...)...)
			if code == 0 || !strings.Contains(stderr, c.flag) {
				t.Errorf("exit %d, stderr %q; want a failure naming %s", code, stderr, c.flag)
			}
		})
	}
	unbalanced := writeTemp(t, "u.csv", "market,day,sales\na,1,1\na,2,2\nb,1,3\nt,1,1\nt,2,2\nb,3,3\n")
	code, _, stderr = runQuasi(t, "geo", "--data", unbalanced, "--unit", "market", "--time", "day", "--outcome", "sales", "--treated", "t", "--start", "2")
	if code == 0 || !strings.Contains(stderr, "--data") || !strings.Contains(stderr, "balanced") {
		t.Errorf("unbalanced panel: exit %d, %q", code, stderr)
	}
}

// TestGeoPlot: "lift geo --plot DIR" writes the four charts in each of
// --plot-formats and geo.html, whose weights are the JSON's; a missing
// directory or a bad format fails naming the flag before any fit.
func TestGeoPlot(t *testing.T) {
	var b strings.Builder
	b.WriteString("market,day,sales\n")
	for day := 1; day <= 12; day++ {
		for i, m := range []string{"a", "b", "c", "d", "t1"} {
			v := 10*float64(i+1) + float64(day) + float64((day*(i+2))%5)
			if m == "t1" {
				v = 15 + float64(day) + float64((day*2)%5+(day*3)%5)/2 + float64(day%2)
				if day >= 9 {
					v += 4
				}
			}
			b.WriteString(m + "," + strconv.Itoa(day) + "," + strconv.FormatFloat(v, 'g', -1, 64) + "\n")
		}
	}
	data := writeTemp(t, "geo.csv", b.String())
	dir := t.TempDir()
	args := []string{"geo", "--data", data, "--unit", "market", "--time", "day", "--outcome", "sales", "--treated", "t1", "--start", "9"}
	code, stdout, stderr := runQuasi(t, append(args, "--plot", dir, "--plot-formats", "png,pdf")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var out struct {
		Average struct {
			Weights []struct {
				Unit   string
				Weight float64
			}
		}
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"synthetic", "effect", "placebo", "weights"} {
		for _, ext := range []string{"png", "pdf"} {
			if fi, err := os.Stat(filepath.Join(dir, name+"."+ext)); err != nil || fi.Size() < 1000 {
				t.Errorf("%s.%s: %v", name, ext, err)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, name+".svg")); err == nil {
			t.Errorf("%s.svg written though --plot-formats has no svg", name)
		}
	}
	page, err := os.ReadFile(filepath.Join(dir, "geo.html"))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Average.Weights) == 0 {
		t.Fatal("no weights")
	}
	for _, w := range out.Average.Weights {
		// Printed with 4 decimals, or 4 significant digits below 0.001.
		m := regexp.MustCompile(`<tr data-donor="` + w.Unit + `"><td>[^<]*</td><td>([^<]*)</td>`).FindStringSubmatch(string(page))
		if m == nil {
			t.Errorf("geo.html has no weight of %s", w.Unit)
			continue
		}
		if v, err := strconv.ParseFloat(m[1], 64); err != nil || math.Abs(v-w.Weight) > 5e-5 {
			t.Errorf("geo.html: weight of %s %q, the JSON %g", w.Unit, m[1], w.Weight)
		}
	}
	for _, c := range []struct{ flag, v string }{{"--plot", filepath.Join(dir, "missing")}, {"--plot-formats", "png,gif"}} {
		extra := []string{"--plot", dir, c.flag, c.v}
		if c.flag == "--plot" {
			extra = []string{"--plot", c.v}
		}
		code, _, stderr := runQuasi(t, append(append([]string{}, args...), extra...)...)
		if code == 0 || !strings.Contains(stderr, c.flag+":") {
			t.Errorf("%s %s: exit %d, %q; want a failure naming %s", c.flag, c.v, code, stderr, c.flag)
		}
	}
}
