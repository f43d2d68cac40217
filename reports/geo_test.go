package reports

import (
	"bytes"
	"fmt"
	"image/png"
	"strings"
	"testing"

	"github.com/liftlab/lift/experiment"
)

func ptr(v float64) *float64 { return &v }

// sampleGeoCharts are the four synthetic-control charts over 10 periods with
// the intervention at period 6 (index 5), one post period unbounded above.
func sampleGeoCharts() []Chart {
	per := SynthPeriods{Start: 5}
	var tr, sy, gap []float64
	for i := range 10 {
		per.Periods = append(per.Periods, fmt.Sprint(2000+i))
		tr = append(tr, 100-float64(i))
		d := 0.0
		if i >= 5 {
			d = 4
		}
		sy = append(sy, 100-float64(i)+d)
		gap = append(gap, -d)
	}
	eff := &SynthEffect{Unit: "CA", Outcome: "packs", SynthPeriods: per, Effect: gap, Level: 0.95,
		Low:  []*float64{ptr(-6), ptr(-7), nil, ptr(-6), ptr(-5)},
		High: []*float64{ptr(-1), ptr(0), ptr(1), ptr(-2), ptr(-1)}}
	pl := &PlaceboGaps{Unit: "CA", Outcome: "packs", SynthPeriods: per, Treated: gap,
		Donors: []GapSeries{{"NV", []float64{1, -1, 1, -1, 1, 2, -2, 2, -2, 2}}, {"UT", []float64{0, 1, 0, 1, 0, 1, 0, 1, 0, 1}}}}
	return []Chart{
		&SynthPath{Unit: "CA", Outcome: "packs", SynthPeriods: per, Treated: tr, Synthetic: sy},
		eff, pl,
		&SynthWeights{Unit: "CA", Weights: []DonorWeight{{"UT", 0.6}, {"NV", 0.5}, {"CO", -0.1}}},
	}
}

// TestGeoChartsRender: each chart renders in every format, says what it
// draws in its labels (the first treated period, the band's missing period,
// the weights to 3 decimals), and bad data is Invalid naming the field.
func TestGeoChartsRender(t *testing.T) {
	labels := map[string][]string{
		"synthetic": {"Synthetic control: CA", "intervention: first treated period 2005", ">2005<"},
		"effect":    {"Effect on packs: CA − synthetic, conformal 95% CI", "no band in 1 of 5 post periods"},
		"placebo":   {"Placebo gaps: CA and 2 donors, each fitted as if treated", "donors (placebos)"},
		"weights":   {"Donor weights of synthetic CA", " 0.600 ", " 0.500 ", " -0.100 ", ">CO<"},
	}
	for _, c := range sampleGeoCharts() {
		svg, err := Bytes(c, SVG, RenderOptions{})
		if err != nil {
			t.Fatalf("%s: %v", c.Name(), err)
		}
		for _, w := range labels[c.Name()] {
			if !strings.Contains(string(svg), w) {
				t.Errorf("%s: the SVG lacks %q", c.Name(), w)
			}
		}
		b, err := Bytes(c, PNG, RenderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := png.Decode(bytes.NewReader(b)); err != nil {
			t.Errorf("%s: PNG: %v", c.Name(), err)
		}
		if p, err := Bytes(c, PDF, RenderOptions{}); err != nil || !bytes.HasPrefix(p, []byte("%PDF-")) {
			t.Errorf("%s: PDF: %v", c.Name(), err)
		}
	}
	per := SynthPeriods{Periods: []string{"1", "2", "3"}, Start: 1}
	for _, c := range []struct {
		c     Chart
		field string
	}{
		{&SynthPath{SynthPeriods: SynthPeriods{Periods: []string{"1"}, Start: 1}}, "periods"},
		{&SynthPath{SynthPeriods: SynthPeriods{Periods: []string{"1", "2"}}, Treated: []float64{1, 2}, Synthetic: []float64{1, 2}}, "start"},
		{&SynthPath{SynthPeriods: SynthPeriods{Periods: []string{"1", "2"}, Start: 2}, Treated: []float64{1, 2}, Synthetic: []float64{1, 2}}, "start"},
		{&SynthPath{SynthPeriods: per, Treated: []float64{1, 2, 3}, Synthetic: []float64{1, 2}}, "synthetic"},
		{&SynthPath{SynthPeriods: per, Treated: []float64{1, nan(), 3}, Synthetic: []float64{1, 2, 3}}, "treated[1]"},
		{&SynthEffect{SynthPeriods: per, Effect: []float64{0, 1, 1}, Low: []*float64{nil}}, "low"},
		{&PlaceboGaps{SynthPeriods: per, Treated: []float64{0, 1, 1}}, "donors"},
		{&PlaceboGaps{SynthPeriods: per, Treated: []float64{0, 1, 1}, Donors: []GapSeries{{"a", []float64{1}}}}, "donors[0].gaps"},
		{&SynthWeights{}, "weights"},
		{&SynthWeights{Weights: []DonorWeight{{"a", 1}, {"b", nan()}}}, "weights[1].weight"},
	} {
		_, err := Bytes(c.c, SVG, RenderOptions{})
		var le *experiment.Error
		if !experiment.Is(err, experiment.Invalid) || !asErr(err, &le) || le.Field != c.field {
			t.Errorf("%s: err = %v, want Invalid on %s", c.c.Name(), err, c.field)
		}
	}
}

// TestGeoPageHTML: the page prints each fit, the weights and the path, an
// unbounded side as −∞/+∞ and an empty set as such, escapes unit names, and
// inlines every chart.
func TestGeoPageHTML(t *testing.T) {
	g := &GeoPage{Title: "Synthetic control (scm): <b>CA</b>", Meta: "3 units", Outcome: "packs", Level: 0.9, Charts: sampleGeoCharts(),
		Fits: []GeoFit{{Unit: "<script>x</script>", Effect: -4, Cumulative: -20, Lift: -0.0412, ConformalP: ptr(0.04), ConformalLow: ptr(-7.5), ConformalHigh: nil,
			PlaceboP: ptr(0.5), PlaceboRank: 2, Placebos: 3, PlaceboEmpty: true, PreRMSPE: 1.25, R2: 0.97, Weights: []DonorWeight{{"UT", 0.6}}}},
		Path:     []GeoPathRow{{Period: "2005", Treated: 95, Synthetic: 99, Effect: -4, PValue: ptr(0.00001), Low: nil, High: ptr(-1)}},
		Warnings: []string{"CA: outside the donors' range"}}
	var b bytes.Buffer
	if err := g.HTML(&b, RenderOptions{}); err != nil {
		t.Fatal(err)
	}
	s := b.String()
	for _, w := range []string{"&lt;script&gt;x&lt;/script&gt;", "&lt;b&gt;CA&lt;/b&gt;", "<td>-4.0000</td>", "<td>-20.0000</td>", "<td>-4.12%</td>",
		"<td>0.0400</td>", "<td>[-7.5000, &#43;∞]</td>", "<td>2 of 4</td>", "<td>empty</td>", "<td>1.2500</td>", "<td>0.9700</td>",
		`<tr data-donor="UT"><td>UT</td><td>0.6000</td>`, "<td>&lt; 0.0001</td>", "<td>[−∞, -1.0000]</td>", "90% interval", "outside the donors&#39; range"} {
		if !strings.Contains(s, w) {
			t.Errorf("the page lacks %q", w)
		}
	}
	if strings.Contains(s, "<script>") || strings.Count(s, "<svg") != 4 {
		t.Errorf("the page has a raw script or %d charts (want 4)", strings.Count(s, "<svg"))
	}
}
