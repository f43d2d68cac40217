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
	// Unestimable says why the effects cannot be estimated (no variance in
	// either arm, fewer than 2 units): Absolute and Relative then hold the
	// analysis' uninformative default (0 [0, 0], p = 1), which the documents do
	// not print as a measured effect.
	Unestimable string `json:"unestimable,omitempty"`
	// Primary marks the experiment's primary metric (reports list it first).
	Primary bool `json:"primary,omitempty"`
	// LowerIsBetter is the metric's direction (higher_is_better false): a decrease
	// is then the good outcome.
	LowerIsBetter bool `json:"lower_is_better,omitempty"`
	// Adjusted holds the p-values after the report's multiple-testing correction;
	// significance is read from them when present.
	Adjusted *Adjusted `json:"adjusted_p_value,omitempty"`
	// CUPED describes the covariate adjustment of the absolute effect, if any.
	CUPED *CUPED `json:"cuped,omitempty"`
	// Bayesian is the posterior of the relative effect (an experiment whose
	// engine is "bayesian"; exact reports only).
	Bayesian *Bayesian `json:"bayesian,omitempty"`
}

// Adjusted holds a comparison's multiple-testing adjusted p-values.
type Adjusted struct {
	Method   string  `json:"method"` // "holm" or "bh"
	Absolute float64 `json:"absolute"`
	Relative float64 `json:"relative"`
}

// CUPED describes a CUPED adjustment: the covariate and the variance reduction of
// the absolute effect, 1 − Var_adjusted/Var_unadjusted.
type CUPED struct {
	Covariate         string  `json:"covariate"`
	VarianceReduction float64 `json:"variance_reduction"`
}

// Verdict says whether a result is a significant change for the better ("better"),
// for the worse ("worse"), or neither (""): significant when its p-value (the
// adjusted one when present) is below alpha, better or worse by the sign of the
// absolute effect and the metric's direction. A row without enough signal (DP) is
// never a change.
func (x Result) Verdict(alpha float64) string {
	if !(alpha > 0 && alpha < 1) {
		alpha = 0.05
	}
	p := x.Absolute.PValue
	if x.Adjusted != nil {
		p = x.Adjusted.Absolute
	}
	if !(p < alpha) || x.Absolute.Estimate == 0 || x.Signal != "" || x.Unestimable != "" {
		return ""
	}
	if (x.Absolute.Estimate > 0) != x.LowerIsBetter {
		return "better"
	}
	return "worse"
}

// Report is an experiment report: what was tested, the results table and charts.
type Report struct {
	Experiment  string    `json:"experiment"` // key
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	Status      string    `json:"status,omitempty"`
	GeneratedAt time.Time `json:"generated_at"`
	// ComputedAt, when set, is when the numbers were computed: the data is
	// as of then (a report kept by the console's cache is rendered later,
	// at GeneratedAt). Stale says data has arrived since, and newer numbers
	// are being computed; Recomputing, that no data has arrived but the
	// numbers are old enough to be computed again (the analysis time has
	// moved: windows mature).
	ComputedAt  *time.Time `json:"computed_at,omitempty"`
	Stale       bool       `json:"stale,omitempty"`
	Recomputing bool       `json:"recomputing,omitempty"`
	Alpha       float64    `json:"alpha"`
	Privacy     Privacy    `json:"privacy"`
	// EpsilonLeft is the experiment's remaining ε after this report's release (DP reports only).
	EpsilonLeft *float64 `json:"epsilon_left,omitempty"`
	// ReleasedAt is when a DP report's release was made (it covers the data until
	// then) and NextReleaseAt when the next one can be: every reader in between
	// gets the same numbers.
	ReleasedAt    *time.Time `json:"released_at,omitempty"`
	NextReleaseAt *time.Time `json:"next_release_at,omitempty"`
	SRMPValue     *float64   `json:"srm_p_value,omitempty"`
	// SRMThreshold is the p-value below which the SRM check raises an alarm (default 0.001).
	SRMThreshold float64 `json:"srm_threshold,omitempty"`
	// Correction is the pre-registered multiple-testing correction applied to the
	// p-values across every metric and variant: "holm", "bh" or "none" ("" when
	// the report does not say).
	Correction string `json:"correction,omitempty"`
	// Sequential says the intervals and p-values are always-valid confidence
	// sequences with tuning SequentialTuning (N*), not fixed-horizon ones.
	Sequential       bool    `json:"sequential,omitempty"`
	SequentialTuning float64 `json:"sequential_tuning,omitempty"`
	// Methods are further sentences for the methods section (e.g. what a DP
	// release leaves out).
	Methods []string `json:"methods,omitempty"`
	Results []Result `json:"results"`
	Notes   []string `json:"notes,omitempty"`
	Charts  []Chart  `json:"-"`
	// Missing says, for each chart the report would have but left out, why
	// (chart name → sentence); the sentence is among Notes as well.
	Missing map[string]string `json:"missing_charts,omitempty"`
	// The further views (views.go), each nil when the report has none.
	Bandit    *Bandit    `json:"bandit,omitempty"`
	Segments  *Segments  `json:"segments,omitempty"`
	Quantiles *Quantiles `json:"quantiles,omitempty"`
	// Health is the health section (health.go), exact reports only.
	Health *Health `json:"health,omitempty"`
	// Maturity is the daily series' maturity (maturity.go), for a primary
	// metric with a matured-only window.
	Maturity *DailyMaturity `json:"maturity,omitempty"`
	// Hidden says which views this report leaves out and why (a DP report:
	// they have no DP release).
	Hidden []string `json:"hidden_views,omitempty"`
	// Definitions are the versions of the metric definitions the results
	// read (definitions.go).
	Definitions []MetricDefinition `json:"metric_definitions,omitempty"`
	// PrivateSegments is a DP report's segment breakdown
	// (private_segments.go), nil when it has none.
	PrivateSegments *PrivateSegments `json:"private_segments,omitempty"`
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
// control mean is 0, and the privacy of the numbers on every row; when the report
// has adjusted p-values, two last columns abs_p_value_METHOD and
// rel_p_value_METHOD (METHOD "holm" or "bh", the correction). A text cell that
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
	adj := r.adjustedMethod()
	head := csvHeader()
	if adj != "" {
		head = append(head, "abs_p_value_"+adj, "rel_p_value_"+adj)
	}
	if err := cw.Write(head); err != nil {
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
		if adj != "" {
			if a := x.Adjusted; a != nil {
				rel := ""
				if x.Relative != nil {
					rel = f(a.Relative)
				}
				row = append(row, f(a.Absolute), rel)
			} else {
				row = append(row, "", "")
			}
		}
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
	Metric, Variant, N, Mean, ControlMean, Abs, Rel, P, PAdj string
	Primary                                                  bool
	Direction                                                string // "higher is better" or "lower is better"
	Verdict                                                  string // "better", "worse" or ""
	NotEnoughSignal                                          bool
	Unestimable                                              bool
}

// VerdictText is what the verdict column says.
func (x row) VerdictText() string {
	if x.Unestimable {
		return "cannot be estimated"
	}
	switch x.Verdict {
	case "better":
		return "better"
	case "worse":
		return "worse"
	}
	return "no clear change"
}

func (r *Report) alpha() float64 {
	if a := r.Alpha; a > 0 && a < 1 {
		return a
	}
	return 0.05
}

// ordered returns the results with the primary metric's rows first, the others in
// their order.
func (r *Report) ordered() []Result {
	out := make([]Result, 0, len(r.Results))
	for _, x := range r.Results {
		if x.Primary {
			out = append(out, x)
		}
	}
	for _, x := range r.Results {
		if !x.Primary {
			out = append(out, x)
		}
	}
	return out
}

// adjustedMethod is the correction of the report's adjusted p-values ("holm",
// "bh"), "" when no row has any.
func (r *Report) adjustedMethod() string {
	for _, x := range r.Results {
		if x.Adjusted != nil {
			return x.Adjusted.Method
		}
	}
	return ""
}

// adjusted says whether the table has a column of adjusted p-values, and its name.
func (r *Report) adjusted() (bool, string) {
	for _, x := range r.Results {
		if x.Adjusted != nil {
			return true, correctionName(x.Adjusted.Method) + "-adjusted p"
		}
	}
	return false, ""
}

func correctionName(m string) string {
	switch m {
	case "holm":
		return "Holm"
	case "bh":
		return "BH"
	}
	return m
}

func (r *Report) rows() []row {
	var out []row
	a := r.alpha()
	for _, x := range r.ordered() {
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
		w := row{Metric: x.Metric, Variant: x.Variant, N: strconv.FormatInt(x.N, 10), Mean: fmtNum(x.Mean), ControlMean: fmtNum(x.ControlMean),
			Abs: fmtCI(x.Absolute, false), Rel: rel, P: fmtP(x.Absolute.PValue), Primary: x.Primary, Direction: "higher is better", Verdict: x.Verdict(a), NotEnoughSignal: x.Signal != ""}
		if x.LowerIsBetter {
			w.Direction = "lower is better"
		}
		if x.Adjusted != nil {
			w.PAdj = fmtP(x.Adjusted.Absolute)
		}
		if x.Unestimable != "" {
			w.Abs, w.Rel, w.P, w.PAdj, w.Unestimable = "cannot be estimated", "–", "–", "–", true
		}
		out = append(out, w)
	}
	return out
}

// notes are the report's notes, then why each row that cannot be estimated cannot.
func (r *Report) notes() []string {
	out := append([]string(nil), r.Notes...)
	for _, x := range r.ordered() {
		if x.Unestimable != "" {
			out = append(out, fmt.Sprintf("%s, %s: the effect cannot be estimated: %s.", x.Metric, x.Variant, x.Unestimable))
		}
	}
	return out
}

// srmText says what the sample-ratio check found.
func (r *Report) srmText() (string, bool) {
	if r.SRMPValue == nil {
		return "", false
	}
	th := r.SRMThreshold
	if th <= 0 {
		th = 0.001
	}
	p := *r.SRMPValue
	on := "the units per variant"
	if r.Privacy.Private {
		on = "the noised units per variant, with their noise accounted for,"
	}
	s := fmt.Sprintf("Sample ratio mismatch (SRM): χ² test of %s against the variant weights, p = %s (alarm below %g): ", on, fmtP(p), th)
	if p < th {
		return s + "MISMATCH. Assignment or exposure logging is broken; do not trust the effects until it is explained.", true
	}
	return s + "no mismatch.", false
}

// methods are the sentences of the methods section: level and test, multiple
// testing, CUPED, SRM, colours.
func (r *Report) methods() []string {
	a := r.alpha()
	lv := r.level()
	var out []string
	if r.Sequential {
		tun := ""
		if r.SequentialTuning > 0 {
			tun = fmt.Sprintf(", tuning N* = %g", r.SequentialTuning)
		}
		out = append(out, fmt.Sprintf("Sequential test: intervals are always-valid %s confidence sequences and p-values are sequential p-values (asymptotic confidence sequences as in GrowthBook%s), so they stay valid however often the results are looked at. Significance level α = %g.", lv, tun, a))
	} else if r.Privacy.Private {
		out = append(out, fmt.Sprintf("Private release: the %s intervals and the p-values account for the privacy noise added to each released sum and count as well as for the sampling error (with the noise's own distribution, Laplace or Gaussian, not a normal approximation of it; Fieller's interval for relative effects); read them once, at the planned end. Significance level α = %g.", lv, a))
	} else {
		out = append(out, fmt.Sprintf("Fixed-horizon test: Welch %s confidence intervals and two-sided p-values (delta method for relative effects); read them once, at the planned end. Significance level α = %g.", lv, a))
	}
	n := len(r.Results)
	switch has, _ := r.adjusted(); {
	case has:
		m := r.Results[0].Adjusted
		for _, x := range r.Results {
			if x.Adjusted != nil {
				m = x.Adjusted
				break
			}
		}
		what := "Holm's step-down method (controls the family-wise error rate)"
		if m.Method == "bh" {
			what = "the Benjamini–Hochberg method (controls the false discovery rate)"
		}
		pre := ""
		if r.Correction == m.Method {
			pre = ", as pre-registered in the analysis plan"
		}
		across := fmt.Sprintf("across all %d comparisons of this report", n)
		switch n {
		case 1:
			across = "over the one comparison of this report (which leaves it unchanged)"
		case 2:
			across = "across both comparisons of this report"
		}
		out = append(out, fmt.Sprintf("Multiple testing: p-values are adjusted with %s %s%s. A result counts as a change only when its adjusted p < %g; the intervals are not adjusted.", what, across, pre, a))
	case r.Correction == "none":
		out = append(out, fmt.Sprintf("Multiple testing: no correction (the analysis plan says \"none\"): among %d comparisons some may reach p < %g by chance.", n, a))
	default:
		out = append(out, "Multiple testing: p-values are not adjusted.")
	}
	seen := map[string]bool{}
	for _, x := range r.ordered() {
		if x.CUPED == nil {
			continue
		}
		key := x.Metric + "\x00" + x.Variant
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, fmt.Sprintf("CUPED on %s (%s, covariate: %s): variance of the absolute effect reduced by %.1f%%.", x.Metric, x.Variant, x.CUPED.Covariate, 100*x.CUPED.VarianceReduction))
	}
	if len(seen) == 0 {
		out = append(out, "CUPED: no metric is adjusted for a pre-exposure covariate.")
	}
	if s, _ := r.srmText(); s != "" {
		out = append(out, s)
	}
	out = append(out, "Verdicts and colours follow each metric's direction: green \"better\" is a significant change the right way (up when higher is better, down when lower is better), red \"worse\" a significant change the wrong way.")
	return append(out, r.Methods...)
}

var htmlTemplate = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.R.Name}} ({{.R.Experiment}}) · Lift report</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Liberation Sans",Arial,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;color:#222;line-height:1.45}
h1{margin-bottom:.2rem}.meta{color:#666;margin-top:0}
.banner{padding:.6rem .9rem;border-radius:6px;margin:1rem 0}.private{background:#e8f3fb;border:1px solid #0072b2}.exact{background:#fff4e0;border:1px solid #e69f00}.alarm{background:#fde8e0;border:1px solid #d55e00;font-weight:600}.stale{background:#f2f2f2;border:1px solid #999}
table{border-collapse:collapse;width:100%;font-size:.9rem}th,td{padding:.35rem .5rem;border-bottom:1px solid #ddd;text-align:right;vertical-align:top}th:first-child,td:first-child,th:nth-child(2),td:nth-child(2){text-align:left}
td small{display:block;color:#666;font-size:.78rem}.badge{display:inline-block;background:#0072b2;color:#fff;border-radius:3px;padding:0 .3rem;font-size:.75rem;margin-left:.3rem}
tr.primary td{border-top:2px solid #0072b2}tr.better td.verdict{color:#00704f;font-weight:600}tr.worse td.verdict{color:#b34700;font-weight:600}
tr.better td.eff{color:#00704f}tr.worse td.eff{color:#b34700}tr.better{background:#eaf6f1}tr.worse{background:#fdeee6}
tr.nes td{color:#777}figure{margin:1.5rem 0}figcaption{color:#555;font-size:.9rem}
</style></head><body>
{{template "body" .}}
<p class="meta">Generated by Lift.</p>
</body></html>
{{define "body"}}<h1>{{.R.Name}}</h1>
<p class="meta">Experiment <code>{{.R.Experiment}}</code>{{if .R.Status}} · {{.R.Status}}{{end}} · generated {{.Generated}}{{with .AsOf}} · <span id="as-of">results as of {{.}}</span>{{end}}</p>
{{with .StaleText}}<div class="banner stale" id="stale">{{.}}</div>{{end}}
{{if .R.Description}}<p>{{.R.Description}}</p>{{end}}
<div class="banner {{if .R.Privacy.Private}}private{{else}}exact{{end}}">{{.Banner}}</div>
{{if .Units}}<p>Units per variant{{if .R.Privacy.Private}} (DP-noised){{end}}: {{.Units}}.</p>{{end}}
{{if .SRMAlarm}}<div class="banner alarm" id="srm-alarm">{{.SRM}}</div>{{end}}
<h2>Results</h2>
{{if not .Rows}}<p>No metric has results in this report{{if .R.Privacy.Private}}: none can be released privately (see the notes){{end}}.</p>{{else}}
<table id="results"><thead><tr><th>metric</th><th>variant</th><th>n</th><th>mean</th><th>control mean</th><th>absolute effect [{{.Level}} CI]</th><th>relative effect [{{.Level}} CI]</th><th>p-value</th>{{if .Adjusted}}<th>{{.AdjustedName}}</th>{{end}}<th>verdict</th></tr></thead><tbody>
{{range .Rows}}<tr class="{{if .Primary}}primary {{end}}{{.Verdict}}{{if or .NotEnoughSignal .Unestimable}}nes{{end}}"{{if .NotEnoughSignal}} title="not enough signal: see the notes"{{else if .Unestimable}} title="cannot be estimated: see the notes"{{end}} data-metric="{{.Metric}}" data-variant="{{.Variant}}"><td>{{.Metric}}{{if .Primary}}<span class="badge">primary</span>{{end}}<small>{{.Direction}}</small></td><td>{{.Variant}}</td><td>{{.N}}</td><td>{{.Mean}}</td><td>{{.ControlMean}}</td><td class="eff">{{.Abs}}</td><td class="eff">{{.Rel}}</td><td class="p">{{.P}}</td>{{if $.Adjusted}}<td class="padj">{{.PAdj}}</td>{{end}}<td class="verdict">{{.VerdictText}}</td></tr>
{{end}}</tbody></table>
<p class="meta">{{if .Adjusted}}Verdicts use the {{.AdjustedName}}-values{{else}}Verdicts use the p-values{{end}} at α = {{.Alpha}}.{{if .Weak}} Grey rows have not enough signal to read (see the notes).{{end}} Numbers are {{.R.Privacy.Caption}}.</p>{{end}}
{{template "views" .}}
{{template "privsegments" .}}
{{template "definitions" .}}
{{template "maturity" .}}
{{template "health" .}}
<h2>Methods</h2>
<ul id="methods">{{range .Methods}}<li>{{.}}</li>{{end}}</ul>
{{range .Charts}}<figure>{{.SVG}}<figcaption>{{.Name}} · {{$.R.Privacy.Caption}}{{if .Note}} · {{.Note}}{{end}}</figcaption></figure>
{{end}}{{if .Notes}}<h2>Notes</h2><ul>{{range .Notes}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{end}}` + viewsHTML + definitionsHTML + privateSegmentsHTML + healthHTML + maturityHTML))

type htmlChart struct {
	Name, Note string
	SVG        template.HTML
}

// noter is a chart that says something about how it is drawn (e.g. clipped rows).
type noter interface{ Note() string }

func chartNote(c Chart) string {
	if n, ok := c.(noter); ok {
		return n.Note()
	}
	return ""
}

func (r *Report) html(w io.Writer, svgs rendered) error { return r.execute(w, "report", svgs) }

// execute runs the named template ("report", the page; "body", its content)
// over the report.
func (r *Report) execute(w io.Writer, name string, svgs rendered) error {
	data := struct {
		R                      *Report
		Generated, Banner, SRM string
		AsOf, StaleText        string
		Units                  string
		Weak                   bool // a row has not enough signal
		SRMAlarm               bool
		Level, AdjustedName    string
		Adjusted               bool
		Alpha                  float64
		Rows                   []row
		Methods, Notes         []string
		Charts                 []htmlChart
		V                      views
		H                      *healthView
		M                      *maturityView
	}{R: r, V: r.views(), H: r.health(), M: r.maturity(), Notes: r.notes(), Generated: r.GeneratedAt.UTC().Format("2006-01-02 15:04 MST"), Banner: r.banner(), Level: r.level(), Alpha: r.alpha(), Rows: r.rows(), Methods: r.methods()}
	data.AsOf, data.StaleText = r.asOf()
	data.SRM, data.SRMAlarm = r.srmText()
	data.Adjusted, data.AdjustedName = r.adjusted()
	data.Units = r.unitsText()
	for _, x := range data.Rows {
		data.Weak = data.Weak || x.NotEnoughSignal
	}
	for _, c := range r.Charts {
		data.Charts = append(data.Charts, htmlChart{Name: c.Name(), Note: chartNote(c), SVG: inlineSVG(svgs[c.Name()][SVG])})
	}
	if err := htmlTemplate.ExecuteTemplate(w, name, data); err != nil {
		return experiment.E("reports.HTML", experiment.Internal, err)
	}
	return nil
}

// asOf is when the numbers were computed (to the second, "" when the report
// does not say) and, for a stale report, the sentence that says newer
// numbers are coming.
func (r *Report) asOf() (at, stale string) {
	if r.ComputedAt == nil {
		return "", ""
	}
	at = r.ComputedAt.UTC().Format("2006-01-02 15:04:05 MST")
	switch {
	case r.Stale:
		stale = "These results are of the data as of " + at + ": data has arrived since, and the newer results are being computed; reload to see them."
	case r.Recomputing:
		stale = "These results were computed at " + at + ": no data has arrived since, but they are being computed again for the time now (analysis windows mature); reload to see them."
	}
	return at, stale
}

// HTML writes the report as one self-contained HTML page with its charts inlined as SVG.
func (r *Report) HTML(w io.Writer, opt RenderOptions) error {
	svgs, err := renderAll(r.Charts, []Format{SVG}, opt)
	if err != nil {
		return err
	}
	return r.html(w, svgs)
}

// HTMLBody writes what HTML's page shows (title, banner, results table,
// methods, charts inlined as SVG, notes) without the document around it or
// its stylesheet, for pages that embed a report in their own layout (the
// console). The table rows carry data-metric and data-variant like the page's.
func (r *Report) HTMLBody(w io.Writer, opt RenderOptions) error {
	svgs, err := renderAll(r.Charts, []Format{SVG}, opt)
	if err != nil {
		return err
	}
	return r.execute(w, "body", svgs)
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
	fmt.Fprintf(&b, " · generated %s", r.GeneratedAt.UTC().Format("2006-01-02 15:04 MST"))
	asOf, stale := r.asOf()
	if asOf != "" {
		fmt.Fprintf(&b, " · results as of %s", asOf)
	}
	b.WriteString("\n\n")
	if stale != "" {
		fmt.Fprintf(&b, "> %s\n\n", stale)
	}
	if r.Description != "" {
		fmt.Fprintf(&b, "%s\n\n", md.Replace(r.Description))
	}
	fmt.Fprintf(&b, "> %s\n\n", r.banner())
	if srm, alarm := r.srmText(); alarm {
		fmt.Fprintf(&b, "> **%s**\n\n", srm)
	}
	lv := r.level()
	adj, adjName := r.adjusted()
	fmt.Fprintf(&b, "## Results\n\n| metric | variant | n | mean | control mean | absolute effect [%s CI] | relative effect [%s CI] | p-value |", lv, lv)
	if adj {
		fmt.Fprintf(&b, " %s |", adjName)
	}
	b.WriteString(" verdict |\n|---|---|--:|--:|--:|--:|--:|--:|")
	if adj {
		b.WriteString("--:|")
	}
	b.WriteString("---|\n")
	for _, x := range r.rows() {
		name := md.Replace(x.Metric)
		if x.Primary {
			name = "**" + name + "** (primary)"
		}
		verdict := x.VerdictText()
		switch x.Verdict {
		case "better":
			verdict = "✅ better"
		case "worse":
			verdict = "🔴 **worse**"
		}
		fmt.Fprintf(&b, "| %s, %s | %s | %s | %s | %s | %s | %s | %s |", name, x.Direction, md.Replace(x.Variant), x.N, x.Mean, x.ControlMean, x.Abs, x.Rel, x.P)
		if adj {
			fmt.Fprintf(&b, " %s |", x.PAdj)
		}
		fmt.Fprintf(&b, " %s |\n", verdict)
	}
	fmt.Fprintf(&b, "\nNumbers are %s.\n\n", r.Privacy.Caption())
	r.privateSegmentsMarkdown(&b)
	r.healthMarkdown(&b)
	r.definitionsMarkdown(&b)
	b.WriteString("## Methods\n\n")
	for _, m := range r.methods() {
		fmt.Fprintf(&b, "- %s\n", md.Replace(m))
	}
	if plotDir != "" && len(r.Charts) > 0 {
		b.WriteString("\n## Charts\n\n")
		for _, c := range r.Charts {
			alt := c.Name() + ", " + r.Privacy.Caption()
			fmt.Fprintf(&b, "![%s](%s/%s.svg)\n\n", alt, plotDir, c.Name())
			if n := chartNote(c); n != "" {
				fmt.Fprintf(&b, "%s\n\n", md.Replace(n))
			}
		}
	}
	if notes := r.notes(); len(notes) > 0 {
		b.WriteString("\n## Notes\n\n")
		for _, n := range notes {
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
