package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/liftlab/lift/internal/refdata"
)

// runQuasi runs "lift ARGS…" in-process and returns the exit code and streams.
func runQuasi(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), &env{args: args, stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }})
	return code, out.String(), errb.String()
}

func writeTemp(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDiDCardKrueger runs "lift did" on the long-format Card & Krueger file
// (Angrist & Pischke's archive: id, nj, d, fte).
func TestDiDCardKrueger(t *testing.T) {
	data := refdata.File(t, "card-krueger-mhe-long.csv")
	base := []string{"did", "--data", data, "--unit", "id", "--time", "d", "--outcome", "fte", "--treated", "nj", "--post", "d"}
	code, stdout, stderr := runQuasi(t, base...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got didOutput
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	for _, k := range []string{`"estimate"`, `"se"`, `"ci_low"`, `"ci_high"`, `"p_value"`, `"n_obs"`, `"n_clusters"`, `"treated_pre"`, `"treated_post"`, `"control_pre"`, `"control_post"`} {
		if !strings.Contains(stdout, k) {
			t.Errorf("output lacks key %s", k)
		}
	}
	// Card & Krueger (1994), Table 3: testdata/card-krueger-1994-table3.csv.
	tab := map[string]refdata.Row{}
	for _, r := range refdata.Table(t, "card-krueger-1994-table3.csv") {
		tab[r["row"]] = r
	}
	for _, c := range []struct {
		what      string
		got, want float64
		tol       float64
	}{
		// Table 3, column (iii), row 3: 2.76; the unrounded cell-mean DiD of
		// the public data is 2.7536 (see analysis/did tests).
		{"estimate (Table 3 row 3)", got.Estimate, tab["3"].Float(t, "diff"), 0.01},
		// Table 3, rows 1–2: NJ 20.44 → 21.03, PA 23.33 → 21.17.
		{"treated_pre", got.Cells["treated_pre"], tab["1"].Float(t, "nj"), 0.005},
		{"treated_post", got.Cells["treated_post"], tab["2"].Float(t, "nj"), 0.005},
		{"control_pre", got.Cells["control_pre"], tab["1"].Float(t, "pa"), 0.005},
		{"control_post", got.Cells["control_post"], tab["2"].Float(t, "pa"), 0.005},
		// 820 store-waves less 26 without FTE; 410 stores.
		{"n_obs", float64(got.NObs), 794, 0},
		{"n_clusters", float64(got.NClusters), 410, 0},
		{"dof = G−1", got.DOF, 409, 0},
		// CR1 by store; equal to the dense-matrix sandwich in analysis/did's TestMHELong.
		{"se", got.SE, 1.3066070124191, 1e-9},
	} {
		if math.Abs(c.got-c.want) > c.tol {
			t.Errorf("%s = %.10g, want %.10g ± %g", c.what, c.got, c.want, c.tol)
		}
	}
	if got.CILow >= got.Estimate || got.CIHigh <= got.Estimate || got.Events != nil {
		t.Errorf("interval [%g, %g] around %g, events %v", got.CILow, got.CIHigh, got.Estimate, got.Events)
	}

	code, stdout, stderr = runQuasi(t, append(base, "--event-study", "--format", "text")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"estimate 2.7536", "Event study", "pre-trend test: not run"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("text output lacks %q:\n%s", want, stdout)
		}
	}
}

// TestDiDEventStudyCLI checks the event-study output on a small panel with a
// strong pre-trend: 4 periods, treatment starting in period 2 for the treated
// units, whose outcome rises by 3 per period throughout while the controls'
// is flat, plus a deterministic wobble w(u,p) = ((7u+3p²) mod 5)/2 so the fit is
// not exact.
func TestDiDEventStudyCLI(t *testing.T) {
	var b strings.Builder
	b.WriteString("unit,period,y,treated,post\n")
	for u := 0; u < 12; u++ {
		tr := u < 6
		for p := 0; p < 4; p++ {
			y := float64(u%3) + float64((7*u+3*p*p)%5)/2
			if tr {
				y += 3 * float64(p)
			}
			b.WriteString(strings.Join([]string{
				"u" + string(rune('a'+u)), string(rune('0' + p)), jsonNum(y), boolStr(tr), boolStr(p >= 2),
			}, ",") + "\n")
		}
	}
	data := writeTemp(t, "panel.csv", b.String())
	code, stdout, stderr := runQuasi(t, "did", "--data", data, "--unit", "unit", "--time", "period", "--outcome", "y", "--treated", "treated", "--post", "post", "--event-study")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got didOutput
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Events) != 3 || got.Events[0].RelTime != -2 || got.Events[2].RelTime != 1 {
		t.Fatalf("event coefficients %+v; want rel times -2, 0, 1", got.Events)
	}
	// By construction the treated units' lead at −2 is −3 (their outcome is 3
	// lower two periods before start, relative to −1) plus the difference in
	// the mean wobble change between groups, which is small next to its SE.
	if e := got.Events[0]; math.Abs(e.Estimate-(-3)) > 2*e.SE || e.SE <= 0 {
		t.Errorf("lead -2 = %g ± %g, want -3", e.Estimate, e.SE)
	}
	if got.PreTrend == nil || !got.PreTrend.Tested || got.PreTrend.Warning == "" {
		t.Errorf("pre-trend %+v; want a tested lead and a warning", got.PreTrend)
	}
}

func jsonNum(v float64) string { b, _ := json.Marshal(v); return string(b) }

func boolStr(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func TestDiDErrors(t *testing.T) {
	good := "id,t,y,tr,po\n1,0,1.5,1,0\n1,1,2.5,1,1\n2,0,1,0,0\n2,1,1.2,0,1\n3,0,2,0,0\n3,1,2.1,0,1\n4,0,3,1,0\n4,1,4.5,1,1\n"
	for _, c := range []struct {
		name, body string
		args       []string
		code       int
		want       string
	}{
		{"missing flag", good, []string{"--unit", "id", "--time", "t", "--outcome", "y", "--treated", "tr"}, 1, "--post: is required"},
		{"unknown column", good, []string{"--unit", "id", "--time", "t", "--outcome", "sales", "--treated", "tr", "--post", "po"}, 1, `no column "sales"`},
		{"bad number", strings.Replace(good, "2.5", "two", 1), []string{"--unit", "id", "--time", "t", "--outcome", "y", "--treated", "tr", "--post", "po"}, 1, `line 3, column "y": "two" is not a finite number`},
		{"bad flag value", strings.Replace(good, "3,0,2,0,0", "3,0,2,maybe,0", 1), []string{"--unit", "id", "--time", "t", "--outcome", "y", "--treated", "tr", "--post", "po"}, 1, `line 6, column "tr": "maybe" is not 0/1`},
		{"ragged row", good + "5,0\n", []string{"--unit", "id", "--time", "t", "--outcome", "y", "--treated", "tr", "--post", "po"}, 1, "line 10"},
		{"bad vce", good, []string{"--unit", "id", "--time", "t", "--outcome", "y", "--treated", "tr", "--post", "po", "--vce", "hc3"}, 1, "--vce"},
		{"extra argument", good, []string{"--unit", "id", "extra"}, 2, "unexpected argument"},
	} {
		t.Run(c.name, func(t *testing.T) {
			data := writeTemp(t, "d.csv", c.body)
			code, _, stderr := runQuasi(t, append([]string{"did", "--data", data}, c.args...)...)
			if code != c.code || !strings.Contains(stderr, c.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, c.code, c.want)
			}
		})
	}
}

// FuzzReadTable: the CSV reader never panics, and on success every column
// has one value per data row.
func FuzzReadTable(f *testing.F) {
	for _, s := range []string{"a,b\n1,2\n", "a\n\"x,y\"\n", "a,a\n1,1\n", "\ufeffa,b\r\n1,2\r\n", "a,b\n1\n", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tb, err := readTable(context.Background(), "fuzz", "f.csv", strings.NewReader(s))
		if err != nil {
			return
		}
		for j, c := range tb.cols {
			if len(c) != tb.rows() {
				t.Fatalf("column %d has %d values for %d rows", j, len(c), tb.rows())
			}
		}
		for _, h := range tb.header {
			if _, err := tb.floats("fuzz", "--x", h); err != nil && !strings.Contains(err.Error(), "line") {
				t.Fatalf("number error without a line: %v", err)
			}
		}
	})
}
