package reports

import (
	"bytes"
	"flag"
	"image/png"
	"os"
	"path/filepath"
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

func sampleReport(pr Privacy) *Report {
	eps, srm := 1.5, 0.412
	r := &Report{
		Experiment: "checkout-button", Name: "Checkout button <b>colour</b>", Description: "Green vs blue & grey.",
		Status: "running", GeneratedAt: time.Date(2026, 3, 22, 8, 30, 0, 0, time.UTC), Alpha: 0.05, Privacy: pr, SRMPValue: &srm,
		Results: []Result{
			{Metric: "revenue", Variant: "treatment", Control: "control", N: 499688, Mean: 10.24, ControlN: 500312, ControlMean: 10,
				Absolute: Estimate{Estimate: 0.24, SE: 0.0765, CILow: 0.09, CIHigh: 0.39, PValue: 0.0017},
				Relative: &Estimate{Estimate: 0.024, SE: 0.00765, CILow: 0.009, CIHigh: 0.039, PValue: 0.0017}},
			{Metric: "refunds|odd", Variant: "treatment", Control: "control", N: 499688, Mean: 0.001, ControlN: 500312, ControlMean: 0,
				Absolute: Estimate{Estimate: 0.001, SE: 0.002, CILow: -0.003, CIHigh: 0.005, PValue: 0.617}},
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
