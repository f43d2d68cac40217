package reports

import (
	"bytes"
	"flag"
	"html"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// golden compares got with testdata/golden/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./reports -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (%d vs %d bytes); if the change is intended, run go test ./reports -update and review the diff", name, len(got), len(want))
	}
}

func TestChartsSVGGolden(t *testing.T) {
	for _, pr := range []Privacy{{}, {Private: true, Epsilon: 0.5}} {
		for _, c := range sampleCharts(pr) {
			a, err := Bytes(c, SVG, RenderOptions{})
			if err != nil {
				t.Fatalf("%s: %v", c.Name(), err)
			}
			b, _ := Bytes(c, SVG, RenderOptions{})
			if !bytes.Equal(a, b) {
				t.Fatalf("%s: SVG output is not deterministic", c.Name())
			}
			if !bytes.Contains(a, []byte(pr.Caption())) {
				t.Errorf("%s: SVG does not say %q", c.Name(), pr.Caption())
			}
			suffix := "exact"
			if pr.Private {
				suffix = "dp"
			}
			golden(t, c.Name()+"_"+suffix+".svg", a)
		}
	}
}

func TestChartsPNGAndPDF(t *testing.T) {
	for _, c := range sampleCharts(Privacy{Private: true, Epsilon: 1}) {
		b, err := Bytes(c, PNG, RenderOptions{Width: 7, Height: 4.5, DPI: 120})
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: PNG does not decode: %v", c.Name(), err)
		}
		// 7 × 4.5 inches at 120 DPI.
		if sz := img.Bounds().Size(); sz.X != 840 || sz.Y != 540 {
			t.Errorf("%s: PNG is %v, want 840×540", c.Name(), sz)
		}
		// Not blank: some pixels carry the chart's blue.
		blueish := 0
		for y := 0; y < 540; y += 3 {
			for x := 0; x < 840; x += 3 {
				r, g, bl, _ := img.At(x, y).RGBA()
				if bl > 0x9000 && r < 0x5000 && g < 0xa000 {
					blueish++
				}
			}
		}
		if blueish < 20 {
			t.Errorf("%s: PNG has %d blue pixels sampled; looks blank", c.Name(), blueish)
		}
		p, err := Bytes(c, PDF, RenderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(p, []byte("%PDF-")) || !bytes.Contains(p[len(p)-64:], []byte("%%EOF")) {
			t.Errorf("%s: not a complete PDF", c.Name())
		}
	}
}

func TestChartsInvalid(t *testing.T) {
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		c     Chart
		field string
	}{
		{&Forest{}, "effects"},
		{&Forest{Effects: []Effect{{Label: "x", Interval: Interval{Estimate: 1, Low: 0, High: 2}}, {Label: "y", Interval: Interval{Estimate: 1, Low: 2, High: nan()}}}}, "effects[1]"},
		{&Cumulative{Points: []TimeEffect{{Time: day}}}, "points"},
		{&Cumulative{Points: []TimeEffect{{Time: day}, {Time: day}}}, "points[1].time"},
		{&Exposures{Counts: []VariantCount{{"a", -1, 1}}}, "counts[0]"},
		{&Qini{Curves: []Curve{{Name: "m", Points: []CurvePoint{{0, 0}, {1.5, 1}}}}}, "curves[0].points[1]"},
		{&EventStudy{}, "coefficients"},
		{&DiDTrends{}, "treated"},
	}
	for _, c := range cases {
		_, err := Bytes(c.c, SVG, RenderOptions{})
		var le *experiment.Error
		if !experiment.Is(err, experiment.Invalid) || !asErr(err, &le) || le.Field != c.field {
			t.Errorf("%s: err = %v, want Invalid on %s", c.c.Name(), err, c.field)
		}
	}
	if _, err := ParseFormat("gif"); !experiment.Is(err, experiment.Invalid) {
		t.Errorf("ParseFormat(gif) = %v, want Invalid", err)
	}
}

// sampleReport is an experiment report as an analyst reads it: a Holm plan, a
// sequential test, CUPED on the primary metric (listed second, to be moved first),
// a higher-is-better guardrail that got significantly worse, a metric significant
// only before adjustment, and a lower-is-better metric without a relative effect.
//
// The adjusted p-values are statsmodels 0.13's, absolute and relative separately:
//
//	from statsmodels.stats.multitest import multipletests
//	multipletests([0.004, 0.0017, 0.03, 0.617], method='holm')[1]  # [0.012, 0.0068, 0.06, 0.617]
//	multipletests([0.0042, 0.0016, 0.031, 1.0], method='holm')[1]  # [0.0126, 0.0064, 0.062, 1.0]
func sampleReport(pr Privacy) *Report {
	eps, srm := 1.5, 0.412
	holm := func(abs, rel float64) *Adjusted { return &Adjusted{Method: "holm", Absolute: abs, Relative: rel} }
	r := &Report{
		Experiment: "checkout-button", Name: "Checkout button <b>colour</b>", Description: "Green vs blue & grey.",
		Status: "running", GeneratedAt: time.Date(2026, 3, 22, 8, 30, 0, 0, time.UTC), Alpha: 0.05, Privacy: pr, SRMPValue: &srm, SRMThreshold: 0.001,
		Correction: "holm", Sequential: true, SequentialTuning: 5000,
		Results: []Result{
			{Metric: "checkout_rate", Variant: "treatment", Control: "control", N: 499688, Mean: 0.0485, ControlN: 500312, ControlMean: 0.05,
				Absolute: Estimate{Estimate: -0.0015, SE: 0.00052, CILow: -0.0025, CIHigh: -0.0005, PValue: 0.004},
				Relative: &Estimate{Estimate: -0.03, SE: 0.0104, CILow: -0.05, CIHigh: -0.01, PValue: 0.0042}, Adjusted: holm(0.012, 0.0126)},
			{Metric: "revenue", Variant: "treatment", Control: "control", N: 499688, Mean: 10.24, ControlN: 500312, ControlMean: 10, Primary: true,
				Absolute: Estimate{Estimate: 0.24, SE: 0.0765, CILow: 0.09, CIHigh: 0.39, PValue: 0.0017},
				Relative: &Estimate{Estimate: 0.024, SE: 0.00765, CILow: 0.009, CIHigh: 0.039, PValue: 0.0016}, Adjusted: holm(0.0068, 0.0064),
				CUPED: &CUPED{Covariate: "revenue over 14 days before exposure", VarianceReduction: 0.372}},
			{Metric: "clicks", Variant: "treatment", Control: "control", N: 499688, Mean: 3.06, ControlN: 500312, ControlMean: 3,
				Absolute: Estimate{Estimate: 0.06, SE: 0.0276, CILow: 0.006, CIHigh: 0.114, PValue: 0.03},
				Relative: &Estimate{Estimate: 0.02, SE: 0.0093, CILow: 0.002, CIHigh: 0.038, PValue: 0.031}, Adjusted: holm(0.06, 0.062)},
			{Metric: "refunds|odd", Variant: "treatment", Control: "control", N: 499688, Mean: 0.001, ControlN: 500312, ControlMean: 0, LowerIsBetter: true,
				Absolute: Estimate{Estimate: 0.001, SE: 0.002, CILow: -0.003, CIHigh: 0.005, PValue: 0.617}, Adjusted: holm(0.617, 1)},
		},
		Notes:  []string{"Revenue is clamped to [0, 200] EUR per unit."},
		Charts: sampleCharts(pr),
	}
	if pr.Private {
		r.EpsilonLeft = &eps
	}
	return r
}

func TestReportGolden(t *testing.T) {
	for _, pr := range []Privacy{{}, {Private: true, Epsilon: 0.5}} {
		suffix := "exact"
		if pr.Private {
			suffix = "dp"
		}
		r := sampleReport(pr)
		var j, c, m bytes.Buffer
		if err := r.JSON(&j); err != nil {
			t.Fatal(err)
		}
		if err := r.CSV(&c); err != nil {
			t.Fatal(err)
		}
		if err := r.Markdown(&m, "plots"); err != nil {
			t.Fatal(err)
		}
		golden(t, "report_"+suffix+".json", j.Bytes())
		golden(t, "results_"+suffix+".csv", c.Bytes())
		golden(t, "report_"+suffix+".md", m.Bytes())
	}
}

func TestReportHTML(t *testing.T) {
	r := sampleReport(Privacy{Private: true, Epsilon: 0.5})
	r.Charts[0].(*Forest).Effects[0].Label = `<script>alert(1)</script>`
	var b bytes.Buffer
	if err := r.HTML(&b, RenderOptions{}); err != nil {
		t.Fatal(err)
	}
	h := b.String()
	if strings.Contains(h, "<script") {
		t.Error("a label reached the HTML unescaped")
	}
	if n := strings.Count(h, "<svg "); n != 8 {
		t.Errorf("HTML inlines %d SVG charts, want 8", n)
	}
	for _, want := range []string{"Checkout button &lt;b&gt;colour&lt;/b&gt;", "DP-noised (ε = 0.5)", "Privacy budget left: ε = 1.5", "&lt;script&gt;alert(1)&lt;/script&gt;"} {
		if !strings.Contains(h, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	if strings.Contains(h, "<?xml") || strings.Contains(h, "src=\"http") {
		t.Error("HTML is not self-contained inline SVG")
	}
	var e bytes.Buffer
	if err := sampleReport(Privacy{}).HTML(&e, RenderOptions{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.String(), "Exact numbers (not DP-noised)") {
		t.Error("exact report does not say so")
	}
}

func TestWriteDir(t *testing.T) {
	dir := t.TempDir()
	paths, err := sampleReport(Privacy{Private: true, Epsilon: 0.5}).WriteDir(dir, RenderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			got = append(got, rel)
		}
		return nil
	})
	sort.Strings(got)
	// 4 documents + 8 charts × 3 formats.
	if len(got) != 28 || len(paths) != 28 || got[0] != filepath.Join("plots", "cumulative.pdf") || got[len(got)-1] != "results.csv" {
		t.Errorf("files = %v", got)
	}
	// A bad chart writes nothing.
	bad := sampleReport(Privacy{})
	bad.Charts = append(bad.Charts, &Forest{})
	dir2 := filepath.Join(t.TempDir(), "out")
	if _, err := bad.WriteDir(dir2, RenderOptions{}); !experiment.Is(err, experiment.Invalid) {
		t.Fatalf("bad chart: %v", err)
	}
	if _, err := os.Stat(dir2); !os.IsNotExist(err) {
		t.Errorf("a failed report created %s", dir2)
	}
}

// TestReportAnalystReads checks what issue 13 found wrong with the report: the
// primary metric first and marked, the pre-registered correction's adjusted
// p-values shown and used, a methods section (sequential test, Holm, α, CUPED
// with its variance reduction, SRM), and verdicts by each metric's direction: the
// guardrail that got worse is "worse", not a bold win; the metric significant only
// before adjustment is not a change.
func TestReportAnalystReads(t *testing.T) {
	r := sampleReport(Privacy{})
	var hb, mb bytes.Buffer
	if err := r.HTML(&hb, RenderOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := r.Markdown(&mb, "plots"); err != nil {
		t.Fatal(err)
	}
	h, md := html.UnescapeString(hb.String()), mb.String()
	methods := []string{"Sequential test", "N* = 5000", "α = 0.05", "Holm's step-down method", "across all 4 comparisons", "as pre-registered",
		"CUPED on revenue (treatment, covariate: revenue over 14 days before exposure): variance of the absolute effect reduced by 37.2%",
		"Sample ratio mismatch (SRM)", "p = 0.4120 (alarm below 0.001): no mismatch"}
	for _, want := range append(methods, "Holm-adjusted p") {
		if !strings.Contains(h, want) {
			t.Errorf("HTML lacks %q", want)
		}
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q", want)
		}
	}
	if strings.Contains(h, `class="sig"`) || strings.Contains(md, "**-0.0015") {
		t.Error("rows are still bolded by unadjusted p")
	}
	// HTML rows: order, class (verdict) and the adjusted p-value cell.
	rowRE := regexp.MustCompile(`<tr class="([a-z ]*)" data-metric="([^"]+)"[^>]*>.*?<td class="padj">([^<]+)</td><td class="verdict">([^<]+)</td></tr>`)
	var got []string
	for _, m := range rowRE.FindAllStringSubmatch(h, -1) {
		got = append(got, strings.Join(m[1:], " / "))
	}
	want := []string{
		"primary better / revenue / 0.0068 / better",
		"worse / checkout_rate / 0.0120 / worse",
		" / clicks / 0.0600 / no clear change",
		" / refunds|odd / 0.6170 / no clear change",
	}
	if !slices.Equal(got, want) {
		t.Errorf("HTML rows (class / metric / adjusted p / verdict):\n got %q\nwant %q", got, want)
	}
	if !strings.Contains(h, `revenue<span class="badge">primary</span>`) {
		t.Error("HTML does not mark the primary metric")
	}
	// Markdown rows in the same order, with the same verdicts.
	var mdRows []string
	for _, l := range strings.Split(md, "\n") {
		if strings.HasPrefix(l, "| ") && !strings.HasPrefix(l, "| metric") {
			c := strings.Split(l, " | ")
			mdRows = append(mdRows, c[0]+" | "+c[len(c)-2]+" | "+c[len(c)-1])
		}
	}
	wantMD := []string{
		"| **revenue** (primary), higher is better | 0.0068 | ✅ better |",
		"| checkout_rate, higher is better | 0.0120 | 🔴 **worse** |",
		"| clicks, higher is better | 0.0600 | no clear change |",
		"| refunds\\|odd, lower is better | 0.6170 | no clear change |",
	}
	if !slices.Equal(mdRows, wantMD) {
		t.Errorf("Markdown rows:\n got %q\nwant %q", mdRows, wantMD)
	}
	// Verdict by direction: a significant decrease is better for a lower-is-better metric.
	down := Result{Absolute: Estimate{Estimate: -1, PValue: 0.001}, LowerIsBetter: true}
	up := Result{Absolute: Estimate{Estimate: 1, PValue: 0.001}, LowerIsBetter: true}
	if down.Verdict(0.05) != "better" || up.Verdict(0.05) != "worse" {
		t.Errorf("lower is better: decrease %q, increase %q", down.Verdict(0.05), up.Verdict(0.05))
	}
}
