package reports

import (
	"fmt"
	"html/template"
	"image/color"
	"io"
	"math"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"

	"github.com/liftlab/lift/experiment"
)

// The charts of a synthetic control (a geo experiment, docs/geo.md). Their
// x axis is the panel's periods, labelled as the panel labels them (years,
// ISO dates), with the first treated period always among the labels.

// SynthPeriods are the periods of a synthetic-control chart and the index of
// the first treated one.
type SynthPeriods struct {
	Periods []string `json:"periods"`
	Start   int      `json:"start" doc:"index in periods of the first treated period"`
}

// SynthPath plots the treated series and its synthetic control over every
// period, with the intervention marked.
type SynthPath struct {
	Unit    string `json:"unit"`    // the treated market (or "average of …")
	Outcome string `json:"outcome"` // the outcome's name, for the y axis
	SynthPeriods
	Treated   []float64 `json:"treated"`
	Synthetic []float64 `json:"synthetic"`
	Privacy   Privacy   `json:"privacy"`
}

// SynthEffect plots the effect path (treated − synthetic) in every period,
// with the conformal interval of each post period as a band.
type SynthEffect struct {
	Unit    string `json:"unit"`
	Outcome string `json:"outcome"`
	SynthPeriods
	Effect []float64 `json:"effect"`
	// Low and High are the interval of each post period (index t − Start);
	// nil where that end is unbounded or not computed.
	Low     []*float64 `json:"low"`
	High    []*float64 `json:"high"`
	Level   float64    `json:"level"`
	Privacy Privacy    `json:"privacy"`
}

// GapSeries is a unit's gap (the unit minus its synthetic) in every period.
type GapSeries struct {
	Unit string    `json:"unit"`
	Gaps []float64 `json:"gaps"`
}

// PlaceboGaps plots the in-space placebos: every donor's gap when fitted as if
// treated, in grey, and the treated's gap in colour.
type PlaceboGaps struct {
	Unit    string `json:"unit"`
	Outcome string `json:"outcome"`
	SynthPeriods
	Treated []float64   `json:"treated"`
	Donors  []GapSeries `json:"donors"`
	Privacy Privacy     `json:"privacy"`
}

// DonorWeight is a donor's weight in a synthetic control.
type DonorWeight struct {
	Unit   string  `json:"unit"`
	Weight float64 `json:"weight"`
}

// SynthWeights plots the donors' weights as horizontal bars, largest on top
// (the augmented method's may be negative).
type SynthWeights struct {
	Unit    string        `json:"unit"`
	Weights []DonorWeight `json:"weights"`
	Privacy Privacy       `json:"privacy"`
}

// Names of the synthetic-control charts.
func (*SynthPath) Name() string    { return "synthetic" }
func (*SynthEffect) Name() string  { return "effect" }
func (*PlaceboGaps) Name() string  { return "placebo" }
func (*SynthWeights) Name() string { return "weights" }

// check says why the periods cannot carry a chart: fewer than 2, no pre-period
// or no post period, or a series of another length or not finite.
func (s SynthPeriods) check(c Chart, series map[string][]float64) error {
	n := len(s.Periods)
	switch {
	case n < 2:
		return chartErr(c, "periods", "need at least 2 periods, got %d", n)
	case s.Start <= 0:
		return chartErr(c, "start", "no pre-period: the first treated period is the first period (%d of %d)", s.Start, n)
	case s.Start >= n:
		return chartErr(c, "start", "no post period: the first treated period (index %d) is past the last of the %d periods, so there is no effect to draw", s.Start, n)
	}
	for name, v := range series {
		if len(v) != n {
			return chartErr(c, name, "has %d values for %d periods", len(v), n)
		}
		for i, x := range v {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return chartErr(c, fmt.Sprintf("%s[%d]", name, i), "not finite")
			}
		}
	}
	return nil
}

// axis sets the x axis to the periods, labelled by periodTicks, and marks the
// intervention with a dashed line over [lo, hi] named in the legend.
func (s SynthPeriods) axis(p *plot.Plot, lo, hi float64) {
	x := float64(s.Start)
	pad := (hi - lo) * 0.05
	// Black and dotted: the treated series is orange, the zero line grey dashed.
	v := refLine(x, lo-pad, x, hi+pad, color.Black)
	v.Dashes = []vg.Length{vg.Points(1.5), vg.Points(2.5)}
	v.Width = vg.Points(1.5)
	p.Add(v)
	p.Legend.Add("intervention: first treated period "+s.Periods[s.Start], v)
	p.X.Tick.Marker = periodTicks{labels: s.Periods, start: s.Start}
	p.X.Min, p.X.Max = -0.5, float64(len(s.Periods))-0.5
}

// periodTicks labels the integer positions of periods with their labels: every
// k-th, at most periodLabels of them, counted from the first treated period so
// that it is always labelled; an unlabelled tick on each of the others (when
// they are not too many to read).
type periodTicks struct {
	labels []string
	start  int
}

// periodLabels is the most labelled period ticks: ISO dates at 9 points fit 8
// across a 7-inch chart.
const periodLabels = 8

func (pt periodTicks) Ticks(min, max float64) []plot.Tick {
	n := len(pt.labels)
	step := max1((n + periodLabels - 1) / periodLabels)
	minor := n <= 120
	var ts []plot.Tick
	for i := range n {
		if float64(i) < min || float64(i) > max {
			continue
		}
		t := plot.Tick{Value: float64(i)}
		if ((i-pt.start)%step+step)%step == 0 {
			t.Label = pt.labels[i]
		} else if !minor {
			continue
		}
		ts = append(ts, t)
	}
	return ts
}

func max1(k int) int {
	if k < 1 {
		return 1
	}
	return k
}

func rangeOf(lo, hi float64, vs ...[]float64) (float64, float64) {
	for _, v := range vs {
		for _, x := range v {
			lo, hi = math.Min(lo, x), math.Max(hi, x)
		}
	}
	return lo, hi
}

func indexXYs(v []float64) plotter.XYs {
	xys := make(plotter.XYs, len(v))
	for i, y := range v {
		xys[i] = plotter.XY{X: float64(i), Y: y}
	}
	return xys
}

func (c *SynthPath) build() (*plot.Plot, error) {
	if err := c.check(c, map[string][]float64{"treated": c.Treated, "synthetic": c.Synthetic}); err != nil {
		return nil, err
	}
	p := newPlot("Synthetic control: "+c.Unit, c.Privacy, "period", c.Outcome)
	lo, hi := rangeOf(math.Inf(1), math.Inf(-1), c.Treated, c.Synthetic)
	tr, err := plotter.NewLine(indexXYs(c.Treated))
	if err != nil {
		return nil, err
	}
	tr.Color, tr.Width = orange, vg.Points(2)
	sy, err := plotter.NewLine(indexXYs(c.Synthetic))
	if err != nil {
		return nil, err
	}
	sy.Color, sy.Width, sy.Dashes = blue, vg.Points(2), []vg.Length{vg.Points(6), vg.Points(3)}
	p.Add(tr, sy)
	p.Legend.Add(c.Unit, tr)
	p.Legend.Add("synthetic "+c.Unit, sy)
	c.axis(p, lo, hi)
	p.Y.Min, p.Y.Max = lo-0.05*(hi-lo), hi+0.05*(hi-lo)
	legendRoom(p)
	return p, nil
}

func (c *SynthEffect) build() (*plot.Plot, error) {
	if err := c.check(c, map[string][]float64{"effect": c.Effect}); err != nil {
		return nil, err
	}
	post := len(c.Periods) - c.Start
	if len(c.Low) != post || len(c.High) != post {
		return nil, chartErr(c, "low", "need one interval per post period (%d), got %d lows and %d highs", post, len(c.Low), len(c.High))
	}
	lo, hi := rangeOf(0, 0, c.Effect)
	bounded := make([]bool, post)
	missing := 0
	for k := range post {
		l, h := c.Low[k], c.High[k]
		bounded[k] = l != nil && h != nil && !math.IsNaN(*l+*h) && !math.IsInf(*l+*h, 0)
		if !bounded[k] {
			missing++
			continue
		}
		lo, hi = math.Min(lo, *l), math.Max(hi, *h)
	}
	xLabel := "period"
	if missing > 0 {
		xLabel += fmt.Sprintf("\nno band in %d of %d post periods: their interval is unbounded or not computed", missing, post)
	}
	p := newPlot("Effect on "+c.Outcome+": "+c.Unit+" − synthetic, conformal "+levelText(c.Level), c.Privacy, xLabel, withUnit("effect", c.Outcome))
	// One band per run of bounded post periods; a run of one is a bar.
	var bandShown plot.Thumbnailer
	for k := 0; k < post; {
		if !bounded[k] {
			k++
			continue
		}
		j := k
		for j < post && bounded[j] {
			j++
		}
		var poly plotter.XYs
		for i := k; i < j; i++ {
			poly = append(poly, plotter.XY{X: float64(c.Start + i), Y: *c.High[i]})
		}
		for i := j - 1; i >= k; i-- {
			poly = append(poly, plotter.XY{X: float64(c.Start + i), Y: *c.Low[i]})
		}
		if j-k == 1 {
			l, _ := plotter.NewLine(poly)
			l.Color, l.Width = band, vg.Points(6)
			p.Add(l)
			bandShown = l
		} else {
			pg, err := plotter.NewPolygon(poly)
			if err != nil {
				return nil, err
			}
			pg.Color, pg.LineStyle.Width = band, 0
			p.Add(pg)
			bandShown = pg
		}
		k = j
	}
	line, err := plotter.NewLine(indexXYs(c.Effect))
	if err != nil {
		return nil, err
	}
	line.Color, line.Width = blue, vg.Points(2)
	p.Add(line, refLine(-0.5, 0, float64(len(c.Periods))-0.5, 0, grey))
	p.Legend.Add("effect (treated − synthetic)", line)
	if bandShown != nil {
		p.Legend.Add("conformal "+levelText(c.Level)+" per period", bandShown)
	}
	c.axis(p, lo, hi)
	p.Y.Min, p.Y.Max = lo-0.05*(hi-lo), hi+0.05*(hi-lo)
	legendRoom(p)
	return p, nil
}

func (c *PlaceboGaps) build() (*plot.Plot, error) {
	series := map[string][]float64{"treated": c.Treated}
	for i, d := range c.Donors {
		series[fmt.Sprintf("donors[%d].gaps", i)] = d.Gaps
	}
	if err := c.check(c, series); err != nil {
		return nil, err
	}
	if len(c.Donors) == 0 {
		return nil, chartErr(c, "donors", "no placebo gaps to draw: run the placebo test")
	}
	p := newPlot(fmt.Sprintf("Placebo gaps: %s and %d donors, each fitted as if treated", c.Unit, len(c.Donors)), c.Privacy,
		"period", withUnit("gap", c.Outcome)+": unit − its synthetic")
	lo, hi := rangeOf(0, 0, c.Treated)
	var first *plotter.Line
	for _, d := range c.Donors {
		lo, hi = rangeOf(lo, hi, d.Gaps)
		l, err := plotter.NewLine(indexXYs(d.Gaps))
		if err != nil {
			return nil, err
		}
		l.Color, l.Width = color.RGBA{185, 185, 185, 255}, vg.Points(0.8)
		p.Add(l)
		if first == nil {
			first = l
		}
	}
	tr, err := plotter.NewLine(indexXYs(c.Treated))
	if err != nil {
		return nil, err
	}
	tr.Color, tr.Width = orange, vg.Points(2.5)
	p.Add(tr, refLine(-0.5, 0, float64(len(c.Periods))-0.5, 0, grey))
	p.Legend.Add(c.Unit, tr)
	p.Legend.Add("donors (placebos)", first)
	c.axis(p, lo, hi)
	p.Y.Min, p.Y.Max = lo-0.05*(hi-lo), hi+0.05*(hi-lo)
	legendRoom(p)
	return p, nil
}

func (c *SynthWeights) build() (*plot.Plot, error) {
	if len(c.Weights) == 0 {
		return nil, chartErr(c, "weights", "no donor carries weight")
	}
	n := len(c.Weights)
	vals := make(plotter.Values, n)
	names := make([]string, n)
	lo, hi := 0.0, 0.0
	var lab plotter.XYLabels
	for i, w := range c.Weights {
		if math.IsNaN(w.Weight) || math.IsInf(w.Weight, 0) {
			return nil, chartErr(c, fmt.Sprintf("weights[%d].weight", i), "not finite")
		}
		// First weight on top.
		vals[n-1-i], names[n-1-i] = w.Weight, w.Unit
		lo, hi = math.Min(lo, w.Weight), math.Max(hi, w.Weight)
		lab.XYs = append(lab.XYs, plotter.XY{X: w.Weight, Y: float64(n - 1 - i)})
		lab.Labels = append(lab.Labels, " "+strconv.FormatFloat(w.Weight, 'f', 3, 64)+" ")
	}
	p := newPlot("Donor weights of synthetic "+c.Unit, c.Privacy, "weight", "")
	bars, err := plotter.NewBarChart(vals, vg.Points(math.Min(18, 220/float64(n))))
	if err != nil {
		return nil, err
	}
	bars.Horizontal, bars.Color, bars.LineStyle.Width = true, blue, 0
	p.Add(bars)
	labels, err := plotter.NewLabels(lab)
	if err != nil {
		return nil, err
	}
	for i := range labels.TextStyle {
		labels.TextStyle[i].Font.Variant = "Sans"
		labels.TextStyle[i].Font.Size = vg.Points(8)
		labels.TextStyle[i].YAlign = text.YCenter
		if lab.XYs[i].X < 0 {
			labels.TextStyle[i].XAlign = text.XRight
		}
	}
	p.Add(labels)
	p.NominalY(names...)
	span := hi - lo
	p.X.Min, p.X.Max = lo-0.02*span, hi+0.15*span // room for the value labels
	if lo < 0 {
		p.X.Min = lo - 0.15*span
	}
	p.Y.Min, p.Y.Max = -0.7, float64(n)-0.3
	return p, nil
}

// GeoPage is the page of a synthetic-control analysis (a geo experiment): a
// summary per fit (the average of the test markets first, then each market),
// the donor weights and the effect path of the average fit, and its charts.
// Its numbers are exact (geo analyses are for analysts).
type GeoPage struct {
	Title string // e.g. "Synthetic control (scm): California"
	// Meta describes the panel, e.g. "39 units × 31 periods, 38 donors; …".
	Meta    string
	Outcome string
	Level   float64 // e.g. 0.95
	Fits    []GeoFit
	// Path is the average fit's post periods.
	Path     []GeoPathRow
	Charts   []Chart
	Warnings []string
}

// GeoFit is one fit's summary; nil pointers are inference not computed.
type GeoFit struct {
	Unit                  string
	Effect, Cumulative    float64
	Lift                  float64
	ConformalP            *float64
	ConformalLow          *float64 // nil: unbounded below, or not computed
	ConformalHigh         *float64
	ConformalEmpty        bool // the test rejects every effect searched
	PlaceboP              *float64
	PlaceboRank, Placebos int
	PlaceboLow            *float64
	PlaceboHigh           *float64
	PlaceboEmpty          bool
	PreRMSPE, R2          float64
	Weights               []DonorWeight
}

// GeoPathRow is one post period of the average fit.
type GeoPathRow struct {
	Period             string
	Treated, Synthetic float64
	Effect             float64
	PValue             *float64
	Low, High          *float64
	Empty              bool
}

func fmtOpt(v *float64, missing string) string {
	if v == nil {
		return missing
	}
	return fmtNum(*v)
}

func fmtOptP(v *float64) string {
	if v == nil {
		return "–"
	}
	return fmtP(*v)
}

// fmtSet prints an interval from an inversion: "[lo, hi]" with −∞ or +∞
// for an unbounded side, "empty" when every value searched is rejected.
func fmtSet(lo, hi *float64, empty bool) string {
	if empty {
		return "empty"
	}
	return "[" + fmtOpt(lo, "−∞") + ", " + fmtOpt(hi, "+∞") + "]"
}

var geoTemplate = template.Must(template.New("geo").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.P.Title}} · Lift</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Liberation Sans",Arial,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;color:#222;line-height:1.45}
h1{margin-bottom:.2rem}.meta{color:#666;margin-top:0}.warn{padding:.6rem .9rem;border-radius:6px;margin:1rem 0;background:#fde8e0;border:1px solid #d55e00}
table{border-collapse:collapse;font-size:.9rem;margin-bottom:1rem}th,td{padding:.35rem .5rem;border-bottom:1px solid #ddd;text-align:right;vertical-align:top}th:first-child,td:first-child{text-align:left}
figure{margin:1.5rem 0}figcaption{color:#555;font-size:.9rem}
</style></head><body>
{{template "body" .}}
</body></html>
{{define "body"}}<h1>{{.P.Title}}</h1>
<p class="meta">{{.P.Meta}}</p>
{{range .P.Warnings}}<div class="warn">{{.}}</div>{{end}}
<h2>Effect on {{.P.Outcome}}</h2>
<table id="fits"><thead><tr><th>fit</th><th>effect per period</th><th>cumulative</th><th>lift</th><th>conformal p</th><th>conformal {{.Level}} interval</th><th>placebo p</th><th>placebo rank</th><th>placebo {{.Level}} interval</th><th>pre-period RMSPE</th><th>pre-period R²</th></tr></thead><tbody>
{{range .Fits}}<tr data-unit="{{.Unit}}"><td>{{.Unit}}</td><td>{{.Effect}}</td><td>{{.Cumulative}}</td><td>{{.Lift}}</td><td>{{.ConformalP}}</td><td>{{.Conformal}}</td><td>{{.PlaceboP}}</td><td>{{.Rank}}</td><td>{{.Placebo}}</td><td>{{.PreRMSPE}}</td><td>{{.R2}}</td></tr>
{{end}}</tbody></table>
<h2>Donor weights</h2>
{{range .Fits}}<table class="weights" data-unit="{{.Unit}}"><thead><tr><th>donor of {{.Unit}}</th><th>weight</th></tr></thead><tbody>
{{range .Weights}}<tr data-donor="{{.Unit}}"><td>{{.Unit}}</td><td>{{.Weight}}</td></tr>
{{end}}</tbody></table>
{{end}}<h2>Effect path of {{.First}}</h2>
<table id="path"><thead><tr><th>period</th><th>treated</th><th>synthetic</th><th>effect</th><th>conformal p</th><th>conformal {{.Level}} interval</th></tr></thead><tbody>
{{range .Path}}<tr data-period="{{.Period}}"><td>{{.Period}}</td><td>{{.Treated}}</td><td>{{.Synthetic}}</td><td>{{.Effect}}</td><td>{{.P}}</td><td>{{.Interval}}</td></tr>
{{end}}</tbody></table>
{{range .Charts}}<figure>{{.SVG}}<figcaption>{{.Name}} · exact</figcaption></figure>
{{end}}<p class="meta">Intervals are sets of constant effects the test does not reject (−∞ or +∞: unbounded on that side; – not computed). Synthetic control: Abadie, Diamond &amp; Hainmueller (2010); conformal inference: Chernozhukov, Wüthrich &amp; Zhu (2021). Generated by Lift.</p>
{{end}}`))

// HTML writes the page, charts inlined as SVG.
func (g *GeoPage) HTML(w io.Writer, opt RenderOptions) error { return g.execute(w, "geo", opt) }

// HTMLBody writes what HTML's page shows without the document around it or
// its stylesheet, for pages that embed it in their own layout (the console).
func (g *GeoPage) HTMLBody(w io.Writer, opt RenderOptions) error { return g.execute(w, "body", opt) }

func (g *GeoPage) execute(w io.Writer, name string, opt RenderOptions) error {
	svgs, err := renderAll(g.Charts, []Format{SVG}, opt)
	if err != nil {
		return err
	}
	type fit struct {
		Unit, Effect, Cumulative, Lift, ConformalP, Conformal, PlaceboP, Rank, Placebo, PreRMSPE, R2 string
		Weights                                                                                      []struct{ Unit, Weight string }
	}
	type pathRow struct{ Period, Treated, Synthetic, Effect, P, Interval string }
	data := struct {
		P      *GeoPage
		Level  string
		First  string
		Fits   []fit
		Path   []pathRow
		Charts []htmlChart
	}{P: g, Level: strings.TrimSuffix(levelText(g.Level), " CI")}
	for _, f := range g.Fits {
		x := fit{Unit: f.Unit, Effect: fmtNum(f.Effect), Cumulative: fmtNum(f.Cumulative), Lift: fmt.Sprintf("%+.2f%%", 100*f.Lift),
			ConformalP: fmtOptP(f.ConformalP), Conformal: "–", PlaceboP: fmtOptP(f.PlaceboP), Rank: "–", Placebo: "–",
			PreRMSPE: fmtNum(f.PreRMSPE), R2: fmtNum(f.R2)}
		if f.ConformalP != nil {
			x.Conformal = fmtSet(f.ConformalLow, f.ConformalHigh, f.ConformalEmpty)
		}
		if f.PlaceboP != nil {
			x.Rank = fmt.Sprintf("%d of %d", f.PlaceboRank, f.Placebos+1)
			x.Placebo = fmtSet(f.PlaceboLow, f.PlaceboHigh, f.PlaceboEmpty)
		}
		for _, w := range f.Weights {
			x.Weights = append(x.Weights, struct{ Unit, Weight string }{w.Unit, fmtNum(w.Weight)})
		}
		data.Fits = append(data.Fits, x)
	}
	if len(g.Fits) > 0 {
		data.First = g.Fits[0].Unit
	}
	for _, r := range g.Path {
		x := pathRow{Period: r.Period, Treated: fmtNum(r.Treated), Synthetic: fmtNum(r.Synthetic), Effect: fmtNum(r.Effect), P: fmtOptP(r.PValue), Interval: "–"}
		if r.PValue != nil {
			x.Interval = fmtSet(r.Low, r.High, r.Empty)
		}
		data.Path = append(data.Path, x)
	}
	for _, c := range g.Charts {
		data.Charts = append(data.Charts, htmlChart{Name: c.Name(), SVG: inlineSVG(svgs[c.Name()][SVG])})
	}
	if err := geoTemplate.ExecuteTemplate(w, name, data); err != nil {
		return experiment.E("reports.GeoPage.HTML", experiment.Internal, err)
	}
	return nil
}
