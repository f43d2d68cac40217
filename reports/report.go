package reports

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/liftlab/lift/experiment"
)

// Estimate is an effect with standard error, confidence interval and p-value.
type Estimate struct {
	Estimate float64 `json:"estimate"`
	SE       float64 `json:"se"`
	CILow    float64 `json:"ci_low"`
	CIHigh   float64 `json:"ci_high"`
	PValue   float64 `json:"p_value"`
}

// Result is one row of the results table: a variant against control on a metric.
type Result struct {
	Metric      string    `json:"metric"`
	Variant     string    `json:"variant"`
	Control     string    `json:"control"`
	N           int64     `json:"n"`
	Mean        float64   `json:"mean"`
	ControlN    int64     `json:"control_n"`
	ControlMean float64   `json:"control_mean"`
	Absolute    Estimate  `json:"absolute"`
	Relative    *Estimate `json:"relative,omitempty"` // absent when the control mean is 0
	// Signal, in DP reports, says that the privacy noise dominates the row
	// ("not enough signal: …"); such a row is never shown as significant.
	Signal string `json:"signal,omitempty"`
}

// Report is an experiment report: what was tested, the results table and charts.
type Report struct {
	Experiment  string    `json:"experiment"` // key
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	Status      string    `json:"status,omitempty"`
	GeneratedAt time.Time `json:"generated_at"`
	Alpha       float64   `json:"alpha"`
	Privacy     Privacy   `json:"privacy"`
	// EpsilonLeft is the experiment's remaining ε after this report's release (DP reports only).
	EpsilonLeft *float64 `json:"epsilon_left,omitempty"`
	// ReleasedAt is when a DP report's release was made (it covers the data until
	// then) and NextReleaseAt when the next one can be: every reader in between
	// gets the same numbers.
	ReleasedAt    *time.Time `json:"released_at,omitempty"`
	NextReleaseAt *time.Time `json:"next_release_at,omitempty"`
	SRMPValue     *float64   `json:"srm_p_value,omitempty"`
	Results       []Result   `json:"results"`
	Notes         []string   `json:"notes,omitempty"`
	Charts        []Chart    `json:"-"`
	// Missing says, for each chart the report would have but left out, why
	// (chart name → sentence); the sentence is among Notes as well.
	Missing map[string]string `json:"missing_charts,omitempty"`
}

// LeaveOut records that the chart name is not in the report, and why.
func (r *Report) LeaveOut(name, why string) {
	if r.Missing == nil {
		r.Missing = map[string]string{}
	}
	r.Missing[name] = why
	r.Notes = append(r.Notes, why)
}

// Chart returns the report's chart named name.
func (r *Report) Chart(name string) (Chart, bool) {
	for _, c := range r.Charts {
		if c.Name() == name {
			return c, true
		}
	}
	return nil, false
}

// ChartNames lists the report's charts.
func (r *Report) ChartNames() []string {
	var out []string
	for _, c := range r.Charts {
		out = append(out, c.Name())
	}
	return out
}

// JSON writes the report with every chart's data, indented.
func (r *Report) JSON(w io.Writer) error {
	type named struct {
		Name string `json:"name"`
		Data Chart  `json:"data"`
	}
	out := struct {
		*Report
		Charts []named `json:"charts"`
	}{Report: r}
	for _, c := range r.Charts {
		out.Charts = append(out.Charts, named{c.Name(), c})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return experiment.E("reports.JSON", experiment.Internal, err)
	}
	return nil
}

// csvHeader is the first row of results CSV files.
func csvHeader() []string {
	return []string{"metric", "variant", "control", "n", "mean", "control_n", "control_mean",
		"abs_estimate", "abs_se", "abs_ci_low", "abs_ci_high", "abs_p_value",
		"rel_estimate", "rel_se", "rel_ci_low", "rel_ci_high", "rel_p_value", "private", "epsilon"}
}

// CSV writes the results table as CSV with a header row (see csvHeader): one row per
// metric and variant, numbers in full precision, relative columns empty when the
// control mean is 0, and the privacy of the numbers on every row. A text cell that
// a spreadsheet would run as a formula is escaped (see SpreadsheetSafe).
func (r *Report) CSV(w io.Writer) error { return r.writeCSV(w, SpreadsheetSafe) }

// RawCSV writes the table of CSV without escaping, for machine readers that
// type the columns themselves (the Parquet export): names stay as registered.
func (r *Report) RawCSV(w io.Writer) error { return r.writeCSV(w, func(s string) string { return s }) }

// SpreadsheetSafe escapes a CSV cell against formula injection (OWASP, "CSV
// Injection"): a cell that begins with '=', '+', '-', '@', a tab or a carriage
// return is prefixed with a single quote, so that Excel, LibreOffice and Google
// Sheets show it as text instead of running it (=HYPERLINK(...), =cmd|...).
// A cell that is a number ("-0.5", "+3", "-Inf") is left as it is: it must stay
// a number, and a number runs nothing.
func SpreadsheetSafe(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		if isNumber(s) {
			return s
		}
		return "'" + s
	}
	return s
}

// isNumber reports whether s is a decimal number as strconv writes one
// ("-0.5", "1e-07", "-Inf"), with an optional sign; hexadecimal and other forms
// that strconv.ParseFloat also reads are not numbers to a spreadsheet.
func isNumber(s string) bool {
	t := strings.TrimLeft(s, "+-")
	if len(s)-len(t) > 1 {
		return false
	}
	if t == "Inf" || t == "NaN" {
		return true
	}
	digits, dot, exp := 0, false, false
	for i := 0; i < len(t); i++ {
		switch c := t[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot && !exp:
			dot = true
		case (c == 'e' || c == 'E') && digits > 0 && !exp:
			exp, digits = true, 0
			if i+1 < len(t) && (t[i+1] == '+' || t[i+1] == '-') {
				i++
			}
		default:
			return false
		}
	}
	return digits > 0
}

func (r *Report) writeCSV(w io.Writer, text func(string) string) error {
	cw := csv.NewWriter(w)
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	if err := cw.Write(csvHeader()); err != nil {
		return experiment.E("reports.CSV", experiment.Internal, err)
	}
	eps := ""
	if r.Privacy.Private {
		eps = f(r.Privacy.Epsilon)
	}
	for _, x := range r.Results {
		row := []string{text(x.Metric), text(x.Variant), text(x.Control), strconv.FormatInt(x.N, 10), f(x.Mean), strconv.FormatInt(x.ControlN, 10), f(x.ControlMean),
			f(x.Absolute.Estimate), f(x.Absolute.SE), f(x.Absolute.CILow), f(x.Absolute.CIHigh), f(x.Absolute.PValue)}
		if rel := x.Relative; rel != nil {
			row = append(row, f(rel.Estimate), f(rel.SE), f(rel.CILow), f(rel.CIHigh), f(rel.PValue))
		} else {
			row = append(row, "", "", "", "", "")
		}
		row = append(row, strconv.FormatBool(r.Privacy.Private), eps)
		if err := cw.Write(row); err != nil {
			return experiment.E("reports.CSV", experiment.Internal, err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return experiment.E("reports.CSV", experiment.Internal, err)
	}
	return nil
}

// rendered is every chart of a report in the formats asked for.
type rendered map[string]map[Format][]byte

// renderAll renders the charts in the formats concurrently (one goroutine per
// chart and format, at most 8 at a time) and returns the first error.
func renderAll(charts []Chart, formats []Format, opt RenderOptions) (rendered, error) {
	out := rendered{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var first error
	sem := make(chan struct{}, 8)
	for _, c := range charts {
		out[c.Name()] = map[Format][]byte{}
		for _, f := range formats {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				b, err := Bytes(c, f, opt)
				mu.Lock()
				defer mu.Unlock()
				if err != nil && first == nil {
					first = err
				}
				out[c.Name()][f] = b
			}()
		}
	}
	wg.Wait()
	return out, first
}

// inlineSVG strips the XML prologue so an SVG document can sit inside HTML.
func inlineSVG(b []byte) template.HTML {
	s := string(b)
	if i := strings.Index(s, "<svg"); i >= 0 {
		s = s[i:]
	}
	// Scale with the page.
	s = strings.Replace(s, "<svg ", `<svg style="max-width:100%;height:auto" `, 1)
	return template.HTML(s) // produced by Render from escaped text
}

func fmtNum(v float64) string {
	switch {
	case math.IsNaN(v):
		return "–"
	case v != 0 && (math.Abs(v) >= 1e6 || math.Abs(v) < 1e-3):
		return strconv.FormatFloat(v, 'g', 4, 64)
	}
	return strconv.FormatFloat(v, 'f', 4, 64)
}

func fmtP(p float64) string {
	if p < 1e-4 {
		return "< 0.0001"
	}
	return strconv.FormatFloat(p, 'f', 4, 64)
}

func fmtCI(e Estimate, pct bool) string {
	if pct {
		return fmt.Sprintf("%+.2f%% [%+.2f%%, %+.2f%%]", 100*e.Estimate, 100*e.CILow, 100*e.CIHigh)
	}
	return fmt.Sprintf("%s [%s, %s]", fmtNum(e.Estimate), fmtNum(e.CILow), fmtNum(e.CIHigh))
}

func (r *Report) level() string {
	a := r.Alpha
	if !(a > 0 && a < 1) {
		a = 0.05
	}
	return fmt.Sprintf("%g%%", math.Round((1-a)*1000)/10)
}

// banner says what kind of numbers the report shows.
func (r *Report) banner() string {
	if r.Privacy.Private {
		s := fmt.Sprintf("Differentially private report: every number is %s. ε = %.3g bounds how much any one unit's data "+
			"can change what this report shows (smaller is more private and noisier), so it is safe to share with viewers.", r.Privacy.Caption(), r.Privacy.Epsilon)
		if r.ReleasedAt != nil {
			s += fmt.Sprintf(" Released %s from the data until then", r.ReleasedAt.UTC().Format("2006-01-02 15:04 MST"))
			if r.NextReleaseAt != nil {
				s += fmt.Sprintf("; every reader sees these same numbers until the next release, %s", r.NextReleaseAt.UTC().Format("2006-01-02 15:04 MST"))
			}
			s += "."
		}
		if r.EpsilonLeft != nil {
			s += fmt.Sprintf(" Privacy budget left: ε = %.3g.", *r.EpsilonLeft)
		}
		return s
	}
	return "Exact numbers (not DP-noised): for analysts and admins only; share the DP version instead."
}

// unitsText lists the units per variant of the exposures chart, "control 47,458 ·
// treatment 47,740", or "" without one.
func (r *Report) unitsText() string {
	c, ok := r.Chart("exposures")
	if !ok {
		return ""
	}
	x, ok := c.(*Exposures)
	if !ok {
		return ""
	}
	var parts []string
	for _, v := range x.Counts {
		parts = append(parts, v.Variant+" "+group(math.Round(v.Units)))
	}
	return strings.Join(parts, " · ")
}

type row struct {
	Metric, Variant, N, Mean, ControlMean, Abs, Rel, P string
	Significant, NotEnoughSignal                       bool
}

func (r *Report) rows() []row {
	var out []row
	a := r.Alpha
	if !(a > 0 && a < 1) {
		a = 0.05
	}
	for _, x := range r.Results {
		rel := "–"
		if x.Relative != nil {
			rel = fmtCI(*x.Relative, true)
		}
		if x.Signal != "" {
			if x.Relative == nil {
				rel = "not enough signal"
			} else {
				rel += " · not enough signal"
			}
		}
		out = append(out, row{x.Metric, x.Variant, strconv.FormatInt(x.N, 10), fmtNum(x.Mean), fmtNum(x.ControlMean),
			fmtCI(x.Absolute, false), rel, fmtP(x.Absolute.PValue), x.Absolute.PValue < a && x.Signal == "", x.Signal != ""})
	}
	return out
}

var htmlTemplate = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.R.Name}} ({{.R.Experiment}}) · Lift report</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Liberation Sans",Arial,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222;line-height:1.45}
h1{margin-bottom:.2rem}.meta{color:#666;margin-top:0}
.banner{padding:.6rem .9rem;border-radius:6px;margin:1rem 0}.private{background:#e8f3fb;border:1px solid #0072b2}.exact{background:#fff4e0;border:1px solid #e69f00}
table{border-collapse:collapse;width:100%;font-size:.92rem}th,td{padding:.35rem .5rem;border-bottom:1px solid #ddd;text-align:right}th:first-child,td:first-child,th:nth-child(2),td:nth-child(2){text-align:left}
tr.sig td{font-weight:600}tr.nes td{color:#777}figure{margin:1.5rem 0}figcaption{color:#555;font-size:.9rem}
</style></head><body>
<h1>{{.R.Name}}</h1>
<p class="meta">Experiment <code>{{.R.Experiment}}</code>{{if .R.Status}} · {{.R.Status}}{{end}} · generated {{.Generated}}</p>
{{if .R.Description}}<p>{{.R.Description}}</p>{{end}}
<div class="banner {{if .R.Privacy.Private}}private{{else}}exact{{end}}">{{.Banner}}</div>
{{if .Units}}<p>Units per variant{{if .R.Privacy.Private}} (DP-noised){{end}}: {{.Units}}.</p>{{end}}
{{if .SRM}}<p>Sample ratio mismatch test{{if .R.Privacy.Private}} on the noised unit counts, with their noise accounted for{{end}}: p = {{.SRM}}.</p>{{end}}
<h2>Results</h2>
{{if not .Rows}}<p>No metric has results in this report{{if .R.Privacy.Private}}: none can be released privately (see the notes){{end}}.</p>{{else}}
<table><thead><tr><th>metric</th><th>variant</th><th>n</th><th>mean</th><th>control mean</th><th>absolute effect [{{.Level}} CI]</th><th>relative effect [{{.Level}} CI]</th><th>p-value</th></tr></thead><tbody>
{{range .Rows}}<tr{{if .Significant}} class="sig"{{else if .NotEnoughSignal}} class="nes" title="not enough signal: see the notes"{{end}}><td>{{.Metric}}</td><td>{{.Variant}}</td><td>{{.N}}</td><td>{{.Mean}}</td><td>{{.ControlMean}}</td><td>{{.Abs}}</td><td>{{.Rel}}</td><td>{{.P}}</td></tr>
{{end}}</tbody></table>
<p class="meta">Bold rows have p &lt; {{.R.Alpha}}.{{if .Weak}} Grey rows have not enough signal to read (see the notes).{{end}} Numbers are {{.R.Privacy.Caption}}.</p>{{end}}
{{range .Charts}}<figure>{{.SVG}}<figcaption>{{.Name}} · {{$.R.Privacy.Caption}}</figcaption></figure>
{{end}}{{if .R.Notes}}<h2>Notes</h2><ul>{{range .R.Notes}}<li>{{.}}</li>{{end}}</ul>{{end}}
<p class="meta">Generated by Lift.</p>
</body></html>
`))

type htmlChart struct {
	Name string
	SVG  template.HTML
}

func (r *Report) html(w io.Writer, svgs rendered) error {
	data := struct {
		R                             *Report
		Generated, Banner, SRM, Units string
		Weak                          bool // a row has not enough signal
		Level                         string
		Rows                          []row
		Charts                        []htmlChart
	}{R: r, Generated: r.GeneratedAt.UTC().Format("2006-01-02 15:04 MST"), Banner: r.banner(), Level: r.level(), Rows: r.rows()}
	if r.SRMPValue != nil {
		data.SRM = fmtP(*r.SRMPValue)
	}
	data.Units = r.unitsText()
	for _, x := range data.Rows {
		data.Weak = data.Weak || x.NotEnoughSignal
	}
	for _, c := range r.Charts {
		data.Charts = append(data.Charts, htmlChart{c.Name(), inlineSVG(svgs[c.Name()][SVG])})
	}
	if err := htmlTemplate.Execute(w, data); err != nil {
		return experiment.E("reports.HTML", experiment.Internal, err)
	}
	return nil
}

// HTML writes the report as one self-contained HTML page with its charts inlined as SVG.
func (r *Report) HTML(w io.Writer, opt RenderOptions) error {
	svgs, err := renderAll(r.Charts, []Format{SVG}, opt)
	if err != nil {
		return err
	}
	return r.html(w, svgs)
}

// Markdown writes the report as Markdown; charts are linked as plotDir/NAME.svg
// (plotDir "" leaves them out).
func (r *Report) Markdown(w io.Writer, plotDir string) error {
	var b bytes.Buffer
	md := strings.NewReplacer("|", `\|`, "\n", " ", "<", "&lt;", ">", "&gt;")
	fmt.Fprintf(&b, "# %s\n\nExperiment `%s`", md.Replace(r.Name), r.Experiment)
	if r.Status != "" {
		fmt.Fprintf(&b, " · %s", r.Status)
	}
	fmt.Fprintf(&b, " · generated %s\n\n", r.GeneratedAt.UTC().Format("2006-01-02 15:04 MST"))
	if r.Description != "" {
		fmt.Fprintf(&b, "%s\n\n", md.Replace(r.Description))
	}
	fmt.Fprintf(&b, "> %s\n\n", r.banner())
	if r.SRMPValue != nil {
		fmt.Fprintf(&b, "Sample ratio mismatch test: p = %s.\n\n", fmtP(*r.SRMPValue))
	}
	lv := r.level()
	fmt.Fprintf(&b, "## Results\n\n| metric | variant | n | mean | control mean | absolute effect [%s CI] | relative effect [%s CI] | p-value |\n|---|---|--:|--:|--:|--:|--:|--:|\n", lv, lv)
	for _, x := range r.rows() {
		sig := ""
		if x.Significant {
			sig = "**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s%s%s | %s | %s |\n", md.Replace(x.Metric), md.Replace(x.Variant), x.N, x.Mean, x.ControlMean, sig, x.Abs, sig, x.Rel, x.P)
	}
	fmt.Fprintf(&b, "\nNumbers are %s.\n", r.Privacy.Caption())
	if plotDir != "" && len(r.Charts) > 0 {
		b.WriteString("\n## Charts\n\n")
		for _, c := range r.Charts {
			fmt.Fprintf(&b, "![%s, %s](%s/%s.svg)\n\n", c.Name(), r.Privacy.Caption(), plotDir, c.Name())
		}
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n## Notes\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", md.Replace(n))
		}
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return experiment.E("reports.Markdown", experiment.Internal, err)
	}
	return nil
}

// WriteDir writes the whole report into dir (created if needed): report.html,
// report.md, report.json, results.csv and plots/NAME.{png,svg,pdf} for every chart.
// Files are written under temporary names and renamed at the end, so a failed
// report leaves no partial files behind. It returns the paths written.
func (r *Report) WriteDir(dir string, opt RenderOptions) ([]string, error) {
	const op = "reports.WriteDir"
	all, err := renderAll(r.Charts, Formats(), opt)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	var b bytes.Buffer
	if err := r.html(&b, all); err != nil {
		return nil, err
	}
	files["report.html"] = bytes.Clone(b.Bytes())
	for name, fn := range map[string]func(io.Writer) error{
		"report.md":   func(w io.Writer) error { return r.Markdown(w, "plots") },
		"report.json": r.JSON,
		"results.csv": r.CSV,
	} {
		b.Reset()
		if err := fn(&b); err != nil {
			return nil, err
		}
		files[name] = bytes.Clone(b.Bytes())
	}
	for name, fs := range all {
		for f, data := range fs {
			files[filepath.Join("plots", name+"."+string(f))] = data
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "plots"), 0o755); err != nil {
		return nil, experiment.E(op, experiment.Invalid, experiment.Field("out"), err)
	}
	var tmps []string
	cleanup := func() {
		for _, t := range tmps {
			os.Remove(t)
		}
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	var paths []string
	for _, name := range names {
		data := files[name]
		p := filepath.Join(dir, name)
		t := p + ".tmp"
		if err := os.WriteFile(t, data, 0o644); err != nil {
			cleanup()
			return nil, experiment.E(op, experiment.Internal, err)
		}
		tmps = append(tmps, t)
		paths = append(paths, p)
	}
	for i, t := range tmps {
		if err := os.Rename(t, paths[i]); err != nil {
			cleanup()
			return nil, experiment.E(op, experiment.Internal, err)
		}
	}
	return paths, nil
}
