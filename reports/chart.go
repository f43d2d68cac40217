package reports

import (
	"fmt"
	"image/color"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/liftlab/lift/experiment"
)

// Privacy says whether a chart's or report's numbers are DP-noised, and at what ε.
type Privacy struct {
	Private bool    `json:"private"`
	Epsilon float64 `json:"epsilon,omitempty"`
}

// Caption is "DP-noised (ε = 0.5)" or "exact".
func (p Privacy) Caption() string {
	if p.Private {
		return fmt.Sprintf("DP-noised (ε = %.3g)", p.Epsilon)
	}
	return "exact"
}

// Interval is an estimate with its confidence interval.
type Interval struct {
	Estimate float64 `json:"estimate"`
	Low      float64 `json:"ci_low"`
	High     float64 `json:"ci_high"`
}

func (iv Interval) finite() bool {
	return !math.IsNaN(iv.Estimate+iv.Low+iv.High) && !math.IsInf(iv.Estimate+iv.Low+iv.High, 0)
}

// Effect is one labelled effect, e.g. "revenue: treatment".
type Effect struct {
	Label string `json:"label"`
	Interval
	// Weak marks an effect without enough signal to read (a DP row where the
	// noise dominates): the forest draws it in grey.
	Weak bool `json:"weak,omitempty"`
}

// TimeEffect is an effect estimated with the data up to Time.
type TimeEffect struct {
	Time time.Time `json:"time"`
	Interval
}

// TimeValue is a value at a time.
type TimeValue struct {
	Time  time.Time `json:"time"`
	Value float64   `json:"value"`
}

// PeriodEffect is an event-study coefficient for Period periods relative to the
// intervention (−1 is the omitted reference period).
type PeriodEffect struct {
	Period int `json:"period"`
	Interval
}

// CurvePoint is a point of a Qini or uplift curve: the fraction of units targeted
// (by descending predicted uplift) and the curve's value there.
type CurvePoint struct {
	Fraction float64 `json:"fraction"`
	Value    float64 `json:"value"`
}

// Curve is a named Qini or uplift curve (one model).
type Curve struct {
	Name   string       `json:"name"`
	Points []CurvePoint `json:"points"`
}

// VariantCount is a variant's number of units and the number its weight expects.
type VariantCount struct {
	Variant  string  `json:"variant"`
	Units    float64 `json:"units"`
	Expected float64 `json:"expected"`
}

// Chart is a chart that can be rendered (see Render). The chart types of this package
// are its only implementations.
type Chart interface {
	// Name is the chart's file name stem, e.g. "forest".
	Name() string
	build() (*plot.Plot, error)
}

// Forest plots each effect as a point with a horizontal confidence interval, one row
// per effect, with a reference line at zero.
type Forest struct {
	Title   string   `json:"title,omitempty"` // default "Effect per metric"
	Unit    string   `json:"unit"`            // x-axis unit, e.g. "relative lift (%)"
	Level   float64  `json:"level"`           // confidence level, e.g. 0.95
	Effects []Effect `json:"effects"`
	Privacy Privacy  `json:"privacy"`
}

// Cumulative plots the effect estimated with the data up to each day, with its
// confidence band.
type Cumulative struct {
	Metric  string       `json:"metric"`
	Unit    string       `json:"unit"`
	Level   float64      `json:"level"`
	Points  []TimeEffect `json:"points"`
	Privacy Privacy      `json:"privacy"`
}

// Exposures plots units per variant next to the counts their weights expect, with
// the sample-ratio-mismatch (χ²) p-value in the title.
type Exposures struct {
	Counts    []VariantCount `json:"counts"`
	SRMPValue float64        `json:"srm_p_value"`
	Privacy   Privacy        `json:"privacy"`
}

// Incrementality plots a holdout's incremental effect (exposed population minus
// holdout) over time with its confidence band.
type Incrementality struct {
	Title   string       `json:"title,omitempty"` // default "Incrementality of METRIC vs holdout HOLDOUT"
	Holdout string       `json:"holdout"`
	Metric  string       `json:"metric"`
	Unit    string       `json:"unit"`
	Level   float64      `json:"level"`
	Points  []TimeEffect `json:"points"`
	Privacy Privacy      `json:"privacy"`
	// Dots marks each point: for series of a few measurements (a digest's
	// periods), where the line between them is not data.
	Dots bool `json:"dots,omitempty"`
}

// DiDTrends plots the treated and control groups' mean outcome over time and marks
// the intervention.
type DiDTrends struct {
	Metric       string      `json:"metric"`
	Unit         string      `json:"unit"`
	Treated      []TimeValue `json:"treated"`
	Control      []TimeValue `json:"control"`
	Intervention time.Time   `json:"intervention"`
	Privacy      Privacy     `json:"privacy"`
}

// EventStudy plots event-study coefficients with confidence intervals by period
// relative to the intervention.
type EventStudy struct {
	Metric       string         `json:"metric"`
	Unit         string         `json:"unit"`
	Level        float64        `json:"level"`
	Coefficients []PeriodEffect `json:"coefficients"`
	Privacy      Privacy        `json:"privacy"`
}

// Qini plots Qini curves (cumulative incremental outcomes when targeting the top
// fraction by predicted uplift) against the random-targeting diagonal.
type Qini struct {
	Unit    string  `json:"unit"` // e.g. "incremental conversions"
	Curves  []Curve `json:"curves"`
	Privacy Privacy `json:"privacy"`
}

// UpliftCurve plots the uplift (treated minus control mean) among the top fraction
// targeted, for each model, with the overall average effect as reference.
type UpliftCurve struct {
	Unit    string  `json:"unit"`
	Curves  []Curve `json:"curves"`
	Privacy Privacy `json:"privacy"`
}

// Names of the charts, also their file name stems.
func (*Forest) Name() string         { return "forest" }
func (*Cumulative) Name() string     { return "cumulative" }
func (*Exposures) Name() string      { return "exposures" }
func (*Incrementality) Name() string { return "incrementality" }
func (*DiDTrends) Name() string      { return "did_trends" }
func (*EventStudy) Name() string     { return "event_study" }
func (*Qini) Name() string           { return "qini" }
func (*UpliftCurve) Name() string    { return "uplift" }

// Colours (Okabe–Ito, readable by colour-blind readers).
var (
	blue   = color.RGBA{0, 114, 178, 255}
	orange = color.RGBA{230, 159, 0, 255}
	green  = color.RGBA{0, 158, 115, 255}
	red    = color.RGBA{213, 94, 0, 255}
	grey   = color.RGBA{120, 120, 120, 255}
	// weak is the colour of a forest row without enough signal.
	weak = color.RGBA{160, 160, 160, 255}
	// band is the blue at 24% over white, opaque: vgpdf drew the translucent one grey.
	band = color.RGBA{195, 222, 237, 255}
)

// lineColor is the colour of the i-th curve.
func lineColor(i int) color.Color {
	p := [...]color.Color{blue, orange, green, red, color.RGBA{204, 121, 167, 255}, color.RGBA{86, 180, 233, 255}}
	return p[i%len(p)]
}

func chartErr(c Chart, field, format string, args ...any) error {
	return experiment.E("reports."+c.Name(), experiment.Invalid, experiment.Field(field), experiment.Errorf(format, args...))
}

// newPlot returns a plot with a sans-serif face, the title and the privacy caption
// on a second title line.
func newPlot(title string, pr Privacy, xLabel, yLabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title + "\n" + pr.Caption()
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	for _, s := range []*draw.TextStyle{&p.Title.TextStyle, &p.X.Label.TextStyle, &p.Y.Label.TextStyle, &p.X.Tick.Label, &p.Y.Tick.Label, &p.Legend.TextStyle} {
		s.Font.Variant = "Sans"
	}
	p.Title.TextStyle.Font.Size = vg.Points(13)
	p.Title.Padding = vg.Points(6)
	p.X.Label.TextStyle.Font.Size = vg.Points(11)
	p.Y.Label.TextStyle.Font.Size = vg.Points(11)
	p.X.Tick.Label.Font.Size = vg.Points(9)
	p.Y.Tick.Label.Font.Size = vg.Points(9)
	p.Legend.TextStyle.Font.Size = vg.Points(9)
	p.Legend.Top = true
	p.X.Tick.Marker, p.Y.Tick.Marker = niceTicks{}, niceTicks{}
	p.Add(plotter.NewGrid())
	return p
}

// legendRoom raises the top of the y axis so that a legend in the top corner does not
// hide data.
func legendRoom(p *plot.Plot) {
	p.Y.Max += 0.2 * (p.Y.Max - p.Y.Min)
}

func levelText(l float64) string {
	if l <= 0 || l >= 1 {
		l = 0.95
	}
	return fmt.Sprintf("%g%% CI", math.Round(l*1000)/10)
}

func withUnit(what, unit string) string {
	if unit == "" {
		return what
	}
	return what + " (" + unit + ")"
}

// hline returns a dashed line at y from x0 to x1 (or vertical with vertical).
func refLine(x0, y0, x1, y1 float64, c color.Color) *plotter.Line {
	l, _ := plotter.NewLine(plotter.XYs{{X: x0, Y: y0}, {X: x1, Y: y1}})
	l.Color = c
	l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	l.Width = vg.Points(1)
	return l
}

// The forest's clipping: a row is wide when its interval is more than
// forestWideFactor times the median width of the other rows; the axis then fits
// the other rows (and zero), widened towards the wide rows only while the
// narrowest other row keeps at least forestMinFrac of it, and the parts of wide
// intervals beyond the axis are cut at its edge with an arrow, their true bounds
// printed on the row.
const (
	forestWideFactor = 5
	forestMinFrac    = 0.08
)

// forestAxis returns the x range of the forest's data area before padding and
// which rows are wide.
func (c *Forest) forestAxis() (lo, hi float64, wide []bool) {
	n := len(c.Effects)
	wide = make([]bool, n)
	width := func(e Effect) float64 { return e.High - e.Low }
	if n >= 2 {
		for i, e := range c.Effects {
			others := make([]float64, 0, n-1)
			for j, f := range c.Effects {
				if j != i {
					others = append(others, width(f))
				}
			}
			sort.Float64s(others)
			m := others[len(others)/2]
			if len(others)%2 == 0 {
				m = (others[len(others)/2-1] + others[len(others)/2]) / 2
			}
			wide[i] = width(e) > forestWideFactor*m
		}
	}
	narrowest := math.Inf(1)
	for i, e := range c.Effects {
		if !wide[i] {
			lo, hi = min(lo, e.Low), max(hi, e.High)
			narrowest = min(narrowest, width(e))
		}
	}
	// Widen towards each wide row (narrowest first) while the narrowest other row
	// stays readable: its whole interval if it fits, else its estimate.
	maxSpan := max(hi-lo, narrowest/forestMinFrac)
	idx := make([]int, 0, n)
	for i := range c.Effects {
		if wide[i] {
			idx = append(idx, i)
		}
	}
	sort.SliceStable(idx, func(a, b int) bool { return width(c.Effects[idx[a]]) < width(c.Effects[idx[b]]) })
	for _, i := range idx {
		e := c.Effects[i]
		if l, h := min(lo, e.Low), max(hi, e.High); h-l <= maxSpan {
			lo, hi = l, h
		} else if l, h := min(lo, e.Estimate), max(hi, e.Estimate); h-l <= maxSpan {
			lo, hi = l, h
		}
	}
	return lo, hi, wide
}

// clipped lists the rows whose interval runs beyond the axis [lo, hi].
func (c *Forest) clipped(lo, hi float64) []int {
	var out []int
	for i, e := range c.Effects {
		if e.Low < lo || e.High > hi {
			out = append(out, i)
		}
	}
	return out
}

// axis is the padded x range of the data area.
func (c *Forest) axis() (lo, hi float64) {
	lo, hi, _ = c.forestAxis()
	pad := (hi - lo) * 0.05
	if pad == 0 {
		pad = 1
	}
	return lo - pad, hi + pad
}

// fmtBound writes an interval bound or estimate of a clipped row.
func fmtBound(v float64) string {
	s := strconv.FormatFloat(v, 'g', 3, 64)
	if math.Abs(v) >= 0.1 || v == 0 {
		s = strconv.FormatFloat(v, 'f', 1, 64)
	}
	if v > 0 {
		s = "+" + s
	}
	return s
}

func (c *Forest) boundsText(e Effect) string {
	return "estimate " + fmtBound(e.Estimate) + ", " + levelText(c.Level) + " " + fmtBound(e.Low) + " to " + fmtBound(e.High)
}

// Note says which rows are clipped, with their true bounds, and what grey rows
// are ("" when neither applies).
func (c *Forest) Note() string {
	var out []string
	for _, e := range c.Effects {
		if !e.finite() {
			return ""
		}
		if e.Weak && len(out) == 0 {
			out = append(out, "Grey rows have not enough signal to read: the privacy noise dominates them.")
		}
	}
	lo, hi := c.axis()
	if rows := c.clipped(lo, hi); len(rows) > 0 {
		var parts []string
		for _, i := range rows {
			parts = append(parts, c.Effects[i].Label+" ("+c.boundsText(c.Effects[i])+")")
		}
		unit := ""
		if c.Unit != "" {
			unit = " " + c.Unit
		}
		out = append(out, fmt.Sprintf("Arrows mark intervals that run beyond the axis, cut so the other rows stay readable: %s%s.", strings.Join(parts, "; "), unit))
	}
	return strings.Join(out, " ")
}

func (c *Forest) build() (*plot.Plot, error) {
	if len(c.Effects) == 0 {
		return nil, chartErr(c, "effects", "no effects to plot")
	}
	title := c.Title
	if title == "" {
		title = "Effect per metric"
	}
	n := len(c.Effects)
	for i, e := range c.Effects {
		if !e.finite() {
			return nil, chartErr(c, fmt.Sprintf("effects[%d]", i), "effect %q is not finite: %+v", e.Label, e.Interval)
		}
	}
	xMin, xMax := c.axis()
	clipped := c.clipped(xMin, xMax)
	xLabel := withUnit("effect", c.Unit)
	if len(clipped) > 0 {
		xLabel += "\narrows: interval beyond the axis (true bounds printed on its row)"
	}
	p := newPlot(title+" with "+levelText(c.Level), c.Privacy, xLabel, "")
	names := make([]string, n)
	marks := &clipMarks{style: p.X.Tick.Label}
	marks.style.Font.Size = vg.Points(8)
	for i, e := range c.Effects {
		y := float64(n - 1 - i) // first effect on top
		names[n-1-i] = e.Label
		col := color.Color(blue)
		if e.Weak {
			col = weak
		}
		l, h := max(e.Low, xMin), min(e.High, xMax)
		if l < h {
			ci, _ := plotter.NewLine(plotter.XYs{{X: l, Y: y}, {X: h, Y: y}})
			ci.Color, ci.Width = col, vg.Points(2)
			p.Add(ci)
		}
		if e.Estimate >= xMin && e.Estimate <= xMax {
			pt, _ := plotter.NewScatter(plotter.XYs{{X: e.Estimate, Y: y}})
			pt.GlyphStyle.Color, pt.GlyphStyle.Radius, pt.GlyphStyle.Shape = col, vg.Points(4), draw.CircleGlyph{}
			p.Add(pt)
		}
		left, right := e.Low < xMin, e.High > xMax
		if left {
			marks.arrows = append(marks.arrows, clipArrow{X: xMin, Y: y, Right: false})
		}
		if right {
			marks.arrows = append(marks.arrows, clipArrow{X: xMax, Y: y, Right: true})
		}
		if left || right {
			lb := clipLabel{Y: y, Text: c.boundsText(e), X: (xMin + xMax) / 2, Align: text.XCenter}
			switch {
			case right && !left:
				lb.X, lb.Align = xMax, text.XRight
			case left && !right:
				lb.X, lb.Align = xMin, text.XLeft
			}
			marks.labels = append(marks.labels, lb)
		}
	}
	p.Add(refLine(0, -0.5, 0, float64(n)-0.5, grey))
	if len(marks.arrows) > 0 {
		p.Add(marks)
	}
	p.NominalY(names...)
	p.X.Min, p.X.Max = xMin, xMax
	p.Y.Min, p.Y.Max = -0.5, float64(n)-0.5
	return p, nil
}

// clipArrow is an arrowhead at the axis edge on a clipped row, pointing out.
type clipArrow struct {
	X, Y  float64
	Right bool
}

// clipLabel is the true bounds of a clipped row, printed just above it.
type clipLabel struct {
	X, Y  float64
	Text  string
	Align text.XAlignment
}

// clipMarks draws the arrows and bound labels of a forest's clipped rows.
type clipMarks struct {
	arrows []clipArrow
	labels []clipLabel
	style  text.Style
}

// Plot implements plot.Plotter.
func (m *clipMarks) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	size, half := vg.Points(9), vg.Points(5)
	for _, a := range m.arrows {
		tip := vg.Point{X: trX(a.X), Y: trY(a.Y)}
		back := tip.X - size
		if !a.Right {
			back = tip.X + size
		}
		var path vg.Path
		path.Move(tip)
		path.Line(vg.Point{X: back, Y: tip.Y + half})
		path.Line(vg.Point{X: back, Y: tip.Y - half})
		path.Close()
		c.SetColor(blue)
		c.Fill(path)
	}
	for _, l := range m.labels {
		sty := m.style
		sty.XAlign, sty.YAlign = l.Align, text.YBottom
		pt := vg.Point{X: trX(l.X), Y: trY(l.Y) + vg.Points(6)}
		switch l.Align { // clear of the arrowhead
		case text.XRight:
			pt.X -= size + vg.Points(2)
		case text.XLeft:
			pt.X += size + vg.Points(2)
		}
		c.FillText(sty, pt, l.Text)
	}
}

// timeBand adds a confidence band, the estimate line and a zero line for points.
func timeBand(p *plot.Plot, pts []TimeEffect, level float64) error {
	est := make(plotter.XYs, len(pts))
	poly := make(plotter.XYs, 0, 2*len(pts))
	for i, q := range pts {
		x := float64(q.Time.Unix())
		est[i] = plotter.XY{X: x, Y: q.Estimate}
		poly = append(poly, plotter.XY{X: x, Y: q.High})
	}
	for i := len(pts) - 1; i >= 0; i-- {
		poly = append(poly, plotter.XY{X: float64(pts[i].Time.Unix()), Y: pts[i].Low})
	}
	bandP, err := plotter.NewPolygon(poly)
	if err != nil {
		return err
	}
	bandP.Color = band
	bandP.LineStyle.Width = 0
	line, err := plotter.NewLine(est)
	if err != nil {
		return err
	}
	line.Color, line.Width = blue, vg.Points(2)
	p.Add(bandP, line, refLine(est[0].X, 0, est[len(est)-1].X, 0, grey))
	p.Legend.Add("estimate", line)
	p.Legend.Add(levelText(level), bandP)
	p.X.Tick.Marker = dayTicks{}
	legendRoom(p)
	return nil
}

func checkTimes(c Chart, pts []TimeEffect) error {
	if len(pts) < 2 {
		return chartErr(c, "points", "need at least 2 points over time, got %d", len(pts))
	}
	for i, q := range pts {
		if !q.finite() {
			return chartErr(c, fmt.Sprintf("points[%d]", i), "not finite: %+v", q.Interval)
		}
		if i > 0 && !q.Time.After(pts[i-1].Time) {
			return chartErr(c, fmt.Sprintf("points[%d].time", i), "times must increase, %s follows %s", q.Time.Format(time.RFC3339), pts[i-1].Time.Format(time.RFC3339))
		}
	}
	return nil
}

func (c *Cumulative) build() (*plot.Plot, error) {
	if err := checkTimes(c, c.Points); err != nil {
		return nil, err
	}
	p := newPlot("Cumulative effect on "+c.Metric, c.Privacy, "date (data up to)", withUnit("effect", c.Unit))
	return p, timeBand(p, c.Points, c.Level)
}

func (c *Incrementality) build() (*plot.Plot, error) {
	if err := checkTimes(c, c.Points); err != nil {
		return nil, err
	}
	title := c.Title
	if title == "" {
		title = fmt.Sprintf("Incrementality of %s vs holdout %s", c.Metric, c.Holdout)
	}
	p := newPlot(title, c.Privacy, "date", withUnit("incremental effect", c.Unit))
	if err := timeBand(p, c.Points, c.Level); err != nil {
		return nil, err
	}
	if !c.Dots {
		return p, nil
	}
	// A dot on each measured point: between them the line and band only join
	// the measurements, they are not data.
	pts := make(plotter.XYs, len(c.Points))
	for i, q := range c.Points {
		pts[i] = plotter.XY{X: float64(q.Time.Unix()), Y: q.Estimate}
	}
	dots, err := plotter.NewScatter(pts)
	if err != nil {
		return nil, err
	}
	dots.GlyphStyle.Color, dots.GlyphStyle.Radius, dots.GlyphStyle.Shape = blue, vg.Points(3.5), draw.CircleGlyph{}
	p.Add(dots)
	p.Legend.Add("measured", dots)
	return p, nil
}

func (c *Exposures) build() (*plot.Plot, error) {
	if len(c.Counts) == 0 {
		return nil, chartErr(c, "counts", "no variants to plot")
	}
	p := newPlot(fmt.Sprintf("Units per variant (SRM p = %.3g)", c.SRMPValue), c.Privacy, "variant", "units")
	obs, exp := make(plotter.Values, len(c.Counts)), make(plotter.Values, len(c.Counts))
	names := make([]string, len(c.Counts))
	for i, v := range c.Counts {
		if v.Units < 0 || math.IsNaN(v.Units) || v.Expected < 0 || math.IsNaN(v.Expected) {
			return nil, chartErr(c, fmt.Sprintf("counts[%d]", i), "counts must be non-negative, got %g and %g", v.Units, v.Expected)
		}
		obs[i], exp[i], names[i] = v.Units, v.Expected, v.Variant
	}
	w := vg.Points(40)
	b1, err := plotter.NewBarChart(obs, w)
	if err != nil {
		return nil, err
	}
	b1.Color, b1.LineStyle.Width, b1.Offset = blue, 0, -w/2
	b2, err := plotter.NewBarChart(exp, w)
	if err != nil {
		return nil, err
	}
	b2.Color, b2.LineStyle.Width, b2.Offset = color.RGBA{190, 190, 190, 255}, 0, w/2
	p.Add(b1, b2)
	p.Legend.Add("observed", b1)
	p.Legend.Add("expected from weights", b2)
	p.NominalX(names...)
	top := 0.0
	for _, v := range c.Counts {
		top = max(top, v.Units, v.Expected)
	}
	p.X.Min, p.X.Max = -0.7, float64(len(c.Counts))-0.3
	p.Y.Min, p.Y.Max = 0, top*1.2 // room for the legend above the bars
	p.Y.Tick.Marker = thousands{}
	return p, nil
}

func (c *DiDTrends) build() (*plot.Plot, error) {
	if len(c.Treated) < 2 || len(c.Control) < 2 {
		return nil, chartErr(c, "treated", "need at least 2 periods per group, got %d treated and %d control", len(c.Treated), len(c.Control))
	}
	p := newPlot("Difference-in-differences trends: "+c.Metric, c.Privacy, "period", withUnit("mean "+c.Metric, c.Unit))
	lo, hi := math.Inf(1), math.Inf(-1)
	for gi, g := range []struct {
		name string
		pts  []TimeValue
		col  color.Color
	}{{"treated", c.Treated, orange}, {"control", c.Control, blue}} {
		xys := make(plotter.XYs, len(g.pts))
		for i, v := range g.pts {
			if math.IsNaN(v.Value) || math.IsInf(v.Value, 0) {
				return nil, chartErr(c, fmt.Sprintf("%s[%d].value", g.name, i), "not finite")
			}
			xys[i] = plotter.XY{X: float64(v.Time.Unix()), Y: v.Value}
			lo, hi = min(lo, v.Value), max(hi, v.Value)
		}
		l, s, err := plotter.NewLinePoints(xys)
		if err != nil {
			return nil, err
		}
		l.Color, l.Width = g.col, vg.Points(2)
		s.GlyphStyle.Color, s.GlyphStyle.Shape = g.col, []draw.GlyphDrawer{draw.CircleGlyph{}, draw.SquareGlyph{}}[gi]
		p.Add(l, s)
		p.Legend.Add(g.name, l, s)
	}
	x := float64(c.Intervention.Unix())
	pad := (hi - lo) * 0.05
	v := refLine(x, lo-pad, x, hi+pad, red)
	p.Add(v)
	p.Legend.Add("intervention "+c.Intervention.UTC().Format("Jan 2"), v)
	p.X.Tick.Marker = dayTicks{}
	legendRoom(p)
	return p, nil
}

func (c *EventStudy) build() (*plot.Plot, error) {
	if len(c.Coefficients) == 0 {
		return nil, chartErr(c, "coefficients", "no coefficients to plot")
	}
	p := newPlot("Event study: effect on "+c.Metric+" by period, "+levelText(c.Level), c.Privacy, "periods relative to the intervention", withUnit("effect", c.Unit))
	pts := make(plotter.XYs, len(c.Coefficients))
	minP, maxP := c.Coefficients[0].Period, c.Coefficients[0].Period
	lo, hi := 0.0, 0.0
	for i, e := range c.Coefficients {
		if !e.finite() {
			return nil, chartErr(c, fmt.Sprintf("coefficients[%d]", i), "not finite: %+v", e.Interval)
		}
		x := float64(e.Period)
		ci, _ := plotter.NewLine(plotter.XYs{{X: x, Y: e.Low}, {X: x, Y: e.High}})
		ci.Color, ci.Width = blue, vg.Points(2)
		p.Add(ci)
		pts[i] = plotter.XY{X: x, Y: e.Estimate}
		minP, maxP = min(minP, e.Period), max(maxP, e.Period)
		lo, hi = min(lo, e.Low), max(hi, e.High)
	}
	s, _ := plotter.NewScatter(pts)
	s.GlyphStyle.Color, s.GlyphStyle.Radius, s.GlyphStyle.Shape = blue, vg.Points(3.5), draw.CircleGlyph{}
	p.Add(s, refLine(float64(minP)-0.5, 0, float64(maxP)+0.5, 0, grey))
	start := refLine(-0.5, lo, -0.5, hi, red)
	p.Add(start)
	p.Legend.Add("intervention", start)
	p.X.Tick.Marker = integerTicks{}
	legendRoom(p)
	return p, nil
}

func checkCurves(c Chart, curves []Curve) error {
	if len(curves) == 0 {
		return chartErr(c, "curves", "no curves to plot")
	}
	for i, cv := range curves {
		if len(cv.Points) < 2 {
			return chartErr(c, fmt.Sprintf("curves[%d].points", i), "curve %q needs at least 2 points, got %d", cv.Name, len(cv.Points))
		}
		for j, q := range cv.Points {
			if !(q.Fraction >= 0 && q.Fraction <= 1) || math.IsNaN(q.Value) || math.IsInf(q.Value, 0) {
				return chartErr(c, fmt.Sprintf("curves[%d].points[%d]", i, j), "fraction must be in [0, 1] and value finite, got (%g, %g)", q.Fraction, q.Value)
			}
		}
	}
	return nil
}

func curveLines(p *plot.Plot, curves []Curve) error {
	for i, cv := range curves {
		xys := make(plotter.XYs, len(cv.Points))
		for j, q := range cv.Points {
			xys[j] = plotter.XY{X: 100 * q.Fraction, Y: q.Value}
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return err
		}
		l.Color, l.Width = lineColor(i), vg.Points(2)
		p.Add(l)
		p.Legend.Add(cv.Name, l)
	}
	p.X.Min, p.X.Max = 0, 100
	return nil
}

func (c *Qini) build() (*plot.Plot, error) {
	if err := checkCurves(c, c.Curves); err != nil {
		return nil, err
	}
	p := newPlot("Qini curve", c.Privacy, "units targeted, by predicted uplift (%)", withUnit("cumulative incremental outcome", c.Unit))
	if err := curveLines(p, c.Curves); err != nil {
		return nil, err
	}
	// Random targeting gains in proportion to the fraction targeted.
	first := c.Curves[0].Points
	r := refLine(100*first[0].Fraction, first[0].Value, 100*first[len(first)-1].Fraction, first[len(first)-1].Value, grey)
	p.Add(r)
	p.Legend.Add("random targeting", r)
	p.Legend.Left = true
	return p, nil
}

func (c *UpliftCurve) build() (*plot.Plot, error) {
	if err := checkCurves(c, c.Curves); err != nil {
		return nil, err
	}
	p := newPlot("Uplift among the units targeted", c.Privacy, "units targeted, by predicted uplift (%)", withUnit("uplift", c.Unit))
	if err := curveLines(p, c.Curves); err != nil {
		return nil, err
	}
	// Targeting everyone gives the average effect: the curve's value at 100%.
	last := c.Curves[0].Points[len(c.Curves[0].Points)-1]
	r := refLine(0, last.Value, 100, last.Value, grey)
	p.Add(r)
	p.Legend.Add("average effect (target all)", r)
	legendRoom(p)
	return p, nil
}
