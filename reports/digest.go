package reports

import (
	"bytes"
	"fmt"
	"html/template"
	"image/color"
	"io"
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
	Title       string       `json:"title"`
	Subject     string       `json:"subject"` // experiment key, holdout or journey
	Period      time.Time    `json:"period"`
	GeneratedAt time.Time    `json:"generated_at"`
	Headline    *Headline    `json:"headline,omitempty"` // nil when there is no analyzable primary metric yet
	Verdict     string       `json:"verdict"`
	Guardrails  []Guardrail  `json:"guardrails,omitempty"`
	Trend       []TimeEffect `json:"trend,omitempty"` // headline of each period so far, this one last
	Privacy     Privacy      `json:"privacy"`
	Notes       []string     `json:"notes,omitempty"`
}

// Headline is the digest's main number: the relative lift of a metric.
type Headline struct {
	Metric  string   `json:"metric"`
	Variant string   `json:"variant"`
	Level   float64  `json:"level"` // confidence level, e.g. 0.95
	Lift    Interval `json:"relative_lift"`
	Units   int64    `json:"units"` // analyzed units (DP-noised)
}

// Guardrail is a metric that must not get worse.
type Guardrail struct {
	Metric  string   `json:"metric"`
	Variant string   `json:"variant"`
	Lift    Interval `json:"relative_lift"`
	Breach  bool     `json:"breach"` // the interval lies wholly on the harmful side
}

func pct(x float64) string { return fmt.Sprintf("%+.1f%%", 100*x) }

// HeadlineText is the headline as a sentence, e.g. "revenue: +4.8% (95% CI +1.2% to +8.4%)".
func (d *Digest) HeadlineText() string {
	h := d.Headline
	if h == nil {
		return "No result yet"
	}
	return fmt.Sprintf("%s (%s vs control): %s (%.0f%% CI %s to %s)", h.Metric, h.Variant, pct(h.Lift.Estimate), 100*h.Level, pct(h.Lift.Low), pct(h.Lift.High))
}

func (d *Digest) trendChart() Chart {
	if len(d.Trend) < 2 || d.Headline == nil { // a trend needs two periods
		return nil
	}
	pts := make([]TimeEffect, len(d.Trend))
	for i, p := range d.Trend {
		pts[i] = TimeEffect{Time: p.Time, Interval: Interval{Estimate: 100 * p.Estimate, Low: 100 * p.Low, High: 100 * p.High}}
	}
	return &Incrementality{Title: fmt.Sprintf("%s: %s vs control, by period", d.Headline.Metric, d.Headline.Variant), Holdout: "control", Metric: d.Headline.Metric, Unit: "relative lift, %", Level: d.Headline.Level, Points: pts, Privacy: d.Privacy}
}

var digestTemplate = template.Must(template.New("digest").Funcs(template.FuncMap{"pct": pct}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.D.Title}}</title>
<style>
body{font-family:'Liberation Sans',Arial,Helvetica,sans-serif;max-width:860px;margin:2em auto;color:#222;padding:0 1em}
.headline{font-size:1.6em;margin:.4em 0}.verdict{font-size:1.15em;background:#f3f6fa;border-left:4px solid #2a6ebb;padding:.6em 1em}
.breach{color:#b00020;font-weight:bold}.ok{color:#1b7f3b}table{border-collapse:collapse}td,th{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:left}
.meta{color:#666;font-size:.9em}
</style></head><body>
<h1>{{.D.Title}}</h1>
<p class="meta">Period {{.D.Period.Format "2006-01-02 15:04 MST"}} · generated {{.D.GeneratedAt.Format "2006-01-02 15:04 MST"}} · {{.D.Privacy.Caption}}</p>
<p class="headline" id="headline">{{.D.HeadlineText}}</p>
<p class="verdict" id="verdict">{{.D.Verdict}}</p>
{{if .Chart}}<figure id="trend">{{.Chart}}</figure>{{else if .D.Headline}}<p class="meta">The trend chart appears from the second summary on.</p>{{end}}
{{if .D.Guardrails}}<h2>Guardrails</h2><table id="guardrails"><tr><th>metric</th><th>variant</th><th>relative change</th><th>status</th></tr>
{{range .D.Guardrails}}<tr><td>{{.Metric}}</td><td>{{.Variant}}</td><td>{{pct .Lift.Estimate}} ({{pct .Lift.Low}} to {{pct .Lift.High}})</td><td>{{if .Breach}}<span class="breach">breached</span>{{else}}<span class="ok">holding</span>{{end}}</td></tr>
{{end}}</table>{{end}}
{{range .D.Notes}}<p class="meta">{{.}}</p>{{end}}
<p class="meta">All numbers are differentially private releases: individual units cannot be recovered from them.</p>
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
	line(d.HeadlineText(), 14, color.Black)
	line(d.Verdict, 12, color.RGBA{R: 0x2a, G: 0x6e, B: 0xbb, A: 0xff})
	if c := d.trendChart(); c != nil {
		p, err := c.build()
		if err != nil {
			return err
		}
		top := y - vg.Points(6)
		p.Draw(draw.Crop(dc, m, -m, top-vg.Length(3.8)*vg.Inch, top-ht))
		y = top - vg.Length(3.8)*vg.Inch - vg.Points(12)
	}
	if len(d.Guardrails) > 0 {
		line("Guardrails", 14, color.Black)
		for _, g := range d.Guardrails {
			status, c := "holding", color.Color(color.RGBA{G: 0x7f, B: 0x3b, A: 0xff})
			if g.Breach {
				status, c = "BREACHED", color.RGBA{R: 0xb0, B: 0x20, A: 0xff}
			}
			line(fmt.Sprintf("%s (%s): %s (%s to %s) — %s", g.Metric, g.Variant, pct(g.Lift.Estimate), pct(g.Lift.Low), pct(g.Lift.High), status), 11, c)
		}
	}
	for _, n := range d.Notes {
		line(n, 9, grey)
	}
	line("All numbers are differentially private releases: individual units cannot be recovered from them.", 9, grey)
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
