package reports

import (
	"bytes"
	"fmt"
	"html/template"
	"image/color"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgpdf"

	"github.com/liftlab/lift/experiment"
)

// Digest is an executive summary of one experiment, holdout or journey for one
// period: the headline incremental impact with its interval, the trend of that
// headline over past digests, the guardrails, and a plain-English verdict. Its
// numbers are DP-noised releases; the trend is made of earlier digests' releases,
// so drawing it costs no privacy budget (post-processing).
type Digest struct {
	Title       string    `json:"title"`
	Subject     string    `json:"subject"`          // experiment key, holdout or journey
	Cohort      int       `json:"cohort,omitempty"` // the holdout version reported (holdouts only)
	Period      time.Time `json:"period"`
	GeneratedAt time.Time `json:"generated_at"`
	// Started is when what the digest measures began: the experiment's start, or
	// the holdout cohort's (registry dates, not data).
	Started *time.Time `json:"started,omitempty"`
	// Ended is when it ended, if it has: a stopped experiment, a cohort rotated out.
	Ended      *time.Time   `json:"ended,omitempty"`
	Arms       []ArmUnits   `json:"arms,omitempty"`     // units per arm (DP-noised), the control first
	Headline   *Headline    `json:"headline,omitempty"` // nil when there is no informative result for the primary metric yet
	Verdict    string       `json:"verdict"`
	Guardrails []Guardrail  `json:"guardrails,omitempty"`
	Trend      []TimeEffect `json:"trend,omitempty"` // headline of each period so far, this one last
	Privacy    Privacy      `json:"privacy"`
	Notes      []string     `json:"notes,omitempty"`
}

// ArmUnits is the number of units of one arm.
type ArmUnits struct {
	Arm   string `json:"arm"`
	Units int64  `json:"units"`
}

// Headline is the digest's main number: the relative lift of a metric.
type Headline struct {
	Metric  string   `json:"metric"`
	Variant string   `json:"variant"`
	Control string   `json:"control,omitempty"` // the arm compared against, default "control"
	Level   float64  `json:"level"`             // confidence level, e.g. 0.95
	Lift    Interval `json:"relative_lift"`
	Units   int64    `json:"units"` // analyzed units (DP-noised)
}

// Guardrail is a metric that must not get worse, judged by
// experiment.Metric.Guardrail.
type Guardrail struct {
	Metric  string                     `json:"metric"`
	Variant string                     `json:"variant"`
	Lift    *Interval                  `json:"relative_lift,omitempty"` // nil when the interval says nothing (SaysNothing)
	Status  experiment.GuardrailStatus `json:"status"`
	Breach  bool                       `json:"breach"` // Status is breached
}

// MinArmUnits is the fewest units an arm must have (as released) for a digest to
// publish a comparison involving it.
const MinArmUnits = 30

// SaysNothing reports whether a relative-lift interval is one a digest must not
// publish: not finite, reaching −100% or below (a relative change cannot take
// away more than everything), or too wide to tell a halving from a doubling,
// (1+high)/(1+low) > 4, which holds for any interval covering both −50% and +100%.
func SaysNothing(iv Interval) bool {
	return !iv.finite() || iv.Low <= -1 || (1+iv.High)/(1+iv.Low) > 4
}

func pct(x float64) string { return SignedPercent(x) }

// SignedPercent writes a fraction as a signed percentage with one decimal,
// 0.048 → "+4.8%"; a value that rounds to zero is "+0.0%", never "-0.0%".
func SignedPercent(x float64) string {
	v := math.Round(1000*x) / 10
	if v == 0 {
		v = 0 // drops the sign of −0
	}
	return fmt.Sprintf("%+.1f%%", v)
}

// HeadlineText is the headline as a sentence, e.g. "revenue: +4.8% (95% CI +1.2% to +8.4%)".
func (d *Digest) HeadlineText() string {
	h := d.Headline
	if h == nil {
		return "No result yet"
	}
	ctl := h.Control
	if ctl == "" {
		ctl = "control"
	}
	return fmt.Sprintf("%s (%s vs %s): %s (%.0f%% CI %s to %s)", h.Metric, h.Variant, ctl, pct(h.Lift.Estimate), 100*h.Level, pct(h.Lift.Low), pct(h.Lift.High))
}

// DatesText says when the measurement began and how long it has run by the
// period, e.g. "Running since 2026-11-02 (14 days to this period)".
func (d *Digest) DatesText() string {
	if d.Started == nil {
		return ""
	}
	span := func(to time.Time) string {
		switch days := int(to.Sub(*d.Started).Hours() / 24); {
		case days < 1:
			return "under a day"
		case days == 1:
			return "1 day"
		default:
			return fmt.Sprintf("%d days", days)
		}
	}
	const date = "2006-01-02"
	if e := d.Ended; e != nil && !e.After(d.Period) {
		return fmt.Sprintf("From %s to %s (%s)", d.Started.UTC().Format(date), e.UTC().Format(date), span(*e))
	}
	return fmt.Sprintf("Running since %s (%s to this period)", d.Started.UTC().Format(date), span(d.Period))
}

// UnitsText lists the units per arm, e.g. "Units: control 4,812 · treatment 4,790".
func (d *Digest) UnitsText() string {
	if len(d.Arms) == 0 {
		return ""
	}
	parts := make([]string, len(d.Arms))
	for i, a := range d.Arms {
		parts[i] = a.Arm + " " + thousandsSep(a.Units)
	}
	return "Units: " + strings.Join(parts, " · ")
}

// thousandsSep writes n with commas between thousands.
func thousandsSep(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// EpsilonText says what the privacy parameter means, in one sentence.
func (p Privacy) EpsilonText() string {
	if !p.Private {
		return ""
	}
	return fmt.Sprintf("ε = %.3g is the privacy guarantee: adding or removing any one unit's data changes the chance of any number on this page by at most a factor of e^ε (about %.2f), so no individual can be singled out; a smaller ε means more privacy and more noise.",
		p.Epsilon, math.Exp(p.Epsilon))
}

// statusText is a guardrail status in words.
func statusText(s experiment.GuardrailStatus) string {
	switch s {
	case experiment.GuardrailBreached:
		return "breached"
	case experiment.GuardrailHolding:
		return "holding"
	}
	return "not yet clear"
}

func (d *Digest) trendChart() Chart {
	if len(d.Trend) < 2 || d.Headline == nil { // a trend needs two periods
		return nil
	}
	pts := make([]TimeEffect, len(d.Trend))
	for i, p := range d.Trend {
		pts[i] = TimeEffect{Time: p.Time, Interval: Interval{Estimate: 100 * p.Estimate, Low: 100 * p.Low, High: 100 * p.High}}
	}
	ctl := d.Headline.Control
	if ctl == "" {
		ctl = "control"
	}
	return &Incrementality{Title: fmt.Sprintf("%s: %s vs %s, one summary per period", d.Headline.Metric, d.Headline.Variant, ctl), Holdout: ctl, Metric: d.Headline.Metric, Unit: "relative lift, %", Level: d.Headline.Level, Points: pts, Privacy: d.Privacy, Dots: true}
}

var digestTemplate = template.Must(template.New("digest").Funcs(template.FuncMap{"pct": pct, "status": statusText}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.D.Title}}</title>
<style>
body{font-family:'Liberation Sans',Arial,Helvetica,sans-serif;max-width:860px;margin:2em auto;color:#222;padding:0 1em}
.headline{font-size:1.6em;margin:.4em 0}.verdict{font-size:1.15em;background:#f3f6fa;border-left:4px solid #2a6ebb;padding:.6em 1em}
.breached{color:#b00020;font-weight:bold}.holding{color:#1b7f3b}.unclear{color:#8a6d00}table{border-collapse:collapse}td,th{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:left}
.meta{color:#666;font-size:.9em}.facts{margin:.2em 0}
</style></head><body>
<h1>{{.D.Title}}</h1>
<p class="meta">Period {{.D.Period.Format "2006-01-02 15:04 MST"}} · generated {{.D.GeneratedAt.Format "2006-01-02 15:04 MST"}} · {{.D.Privacy.Caption}}</p>
{{with .D.DatesText}}<p class="facts" id="dates">{{.}}</p>{{end}}{{with .D.UnitsText}}<p class="facts" id="units">{{.}}</p>{{end}}
<p class="headline" id="headline">{{.D.HeadlineText}}</p>
<p class="verdict" id="verdict">{{.D.Verdict}}</p>
{{if .Chart}}<figure id="trend">{{.Chart}}</figure>{{else if .D.Headline}}<p class="meta" id="trend-missing">The trend chart needs two summaries with a result; this is the first.</p>{{end}}
{{if .D.Guardrails}}<h2>Guardrails</h2><table id="guardrails"><tr><th>metric</th><th>variant</th><th>relative change</th><th>status</th></tr>
{{range .D.Guardrails}}<tr><td>{{.Metric}}</td><td>{{.Variant}}</td><td>{{with .Lift}}{{pct .Estimate}} ({{pct .Low}} to {{pct .High}}){{else}}not enough data yet{{end}}</td><td><span class="{{.Status}}">{{status .Status}}</span></td></tr>
{{end}}</table>
<p class="meta">A guardrail is <b>holding</b> only when its interval rules out harm beyond its tolerated margin, <b>breached</b> when harm beyond the margin is statistically clear, and <b>not yet clear</b> otherwise.</p>{{end}}
{{range .D.Notes}}<p class="meta">{{.}}</p>{{end}}
<p class="meta">All numbers are differentially private releases: individual units cannot be recovered from them. {{.D.Privacy.EpsilonText}}</p>
</body></html>
`))

// HTML writes the digest as one self-contained page (the trend chart inlined as SVG).
func (d *Digest) HTML(w io.Writer) error {
	var chart template.HTML
	if c := d.trendChart(); c != nil {
		b, err := Bytes(c, SVG, RenderOptions{Width: 7, Height: 3.6})
		if err != nil {
			return err
		}
		chart = template.HTML(b) // our own SVG, rendered by gonum/plot
	}
	return digestTemplate.Execute(w, struct {
		D     *Digest
		Chart template.HTML
	}{d, chart})
}

// PDF writes the digest as a one-page A4 PDF: the texts, then the trend chart.
func (d *Digest) PDF(w io.Writer) error {
	const op = "reports.Digest.PDF"
	wd, ht := 8.27*vg.Inch, 11.69*vg.Inch
	pc := vgpdf.New(wd, ht)
	pc.EmbedFonts(true)
	dc := draw.New(pdfCanvas{pc})
	m := vg.Length(0.8) * vg.Inch
	y := ht - m
	style := func(size float64, c color.Color) draw.TextStyle {
		f := plot.DefaultFont
		f.Variant = "Sans"
		f.Size = vg.Points(size)
		return draw.TextStyle{Color: c, Font: f, Handler: plot.DefaultTextHandler}
	}
	line := func(s string, size float64, c color.Color) {
		st := style(size, c)
		for _, l := range wrap(s, int(95*10/size)) {
			y -= st.Height(l) * 1.25
			dc.FillText(st, vg.Point{X: m, Y: y}, l)
		}
		y -= vg.Points(size / 2)
	}
	grey := color.Gray{Y: 100}
	line(d.Title, 20, color.Black)
	line(fmt.Sprintf("Period %s · %s", d.Period.Format("2006-01-02 15:04 MST"), d.Privacy.Caption()), 10, grey)
	for _, s := range []string{d.DatesText(), d.UnitsText()} {
		if s != "" {
			line(s, 11, color.Black)
		}
	}
	line(d.HeadlineText(), 14, color.Black)
	line(d.Verdict, 12, color.RGBA{R: 0x2a, G: 0x6e, B: 0xbb, A: 0xff})
	if c := d.trendChart(); c != nil {
		p, err := c.build()
		if err != nil {
			return err
		}
		pdfText(p)
		top := y - vg.Points(6)
		p.Draw(draw.Crop(dc, m, -m, top-vg.Length(3.8)*vg.Inch, top-ht))
		y = top - vg.Length(3.8)*vg.Inch - vg.Points(12)
	}
	if len(d.Guardrails) > 0 {
		line("Guardrails", 14, color.Black)
		for _, g := range d.Guardrails {
			status, c := statusText(g.Status), color.Color(color.RGBA{R: 0x8a, G: 0x6d, A: 0xff})
			switch g.Status {
			case experiment.GuardrailBreached:
				status, c = "BREACHED", color.RGBA{R: 0xb0, B: 0x20, A: 0xff}
			case experiment.GuardrailHolding:
				c = color.RGBA{G: 0x7f, B: 0x3b, A: 0xff}
			}
			change := "not enough data yet"
			if l := g.Lift; l != nil {
				change = fmt.Sprintf("%s (%s to %s)", pct(l.Estimate), pct(l.Low), pct(l.High))
			}
			line(fmt.Sprintf("%s (%s): %s — %s", g.Metric, g.Variant, change, status), 11, c)
		}
		line("A guardrail is holding only when its interval rules out harm beyond its tolerated margin, breached when harm beyond the margin is statistically clear, and not yet clear otherwise.", 9, grey)
	}
	for _, n := range d.Notes {
		line(n, 9, grey)
	}
	line("All numbers are differentially private releases: individual units cannot be recovered from them. "+d.Privacy.EpsilonText(), 9, grey)
	if _, err := pc.WriteTo(w); err != nil {
		return experiment.E(op, experiment.Internal, fmt.Errorf("writing PDF: %w", err))
	}
	return nil
}

// PDFBytes and HTMLBytes are conveniences for storing a digest.
func (d *Digest) PDFBytes() ([]byte, error) {
	var b bytes.Buffer
	err := d.PDF(&b)
	return b.Bytes(), err
}

// HTMLBytes renders the digest's HTML page.
func (d *Digest) HTMLBytes() ([]byte, error) {
	var b bytes.Buffer
	err := d.HTML(&b)
	return b.Bytes(), err
}

// wrap breaks s into lines of at most n runes at spaces.
func wrap(s string, n int) []string {
	var out []string
	var cur strings.Builder
	for _, word := range strings.Fields(s) {
		if cur.Len() > 0 && len([]rune(cur.String()))+1+len([]rune(word)) > n {
			out = append(out, cur.String())
			cur.Reset()
		}
		if cur.Len() > 0 {
			cur.WriteByte(' ')
		}
		cur.WriteString(word)
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}
