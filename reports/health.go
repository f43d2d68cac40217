package reports

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The report's health section: the checks that stay valid when read
// repeatedly (the anytime-valid sequential SRM), the pre-exposure balance of
// each CUPED covariate, and the experiments of other layers that share units
// and metrics with this one, with their interaction tests. Each is computed by
// the pipeline of its API route (GET /v1/experiments/KEY/health and
// …/overlaps) and only shown here. They are exact numbers (unit counts, means
// of the past): a DP report has no health section, and Hidden says so.

// SequentialSRM is the anytime-valid sample-ratio check of Lindon & Malek
// (2022) over the daily looks.
type SequentialSRM struct {
	PValue         float64 `json:"p_value"`
	LogBayesFactor float64 `json:"log_bayes_factor"`
	Threshold      float64 `json:"threshold"`
	Concentration  float64 `json:"concentration"`
	Looks          int     `json:"looks"`
	Mismatch       bool    `json:"mismatch"`
}

// PosteriorMismatch is the posterior probability of a mismatch at the last
// look with even prior odds: BF/(1 + BF).
func (s SequentialSRM) PosteriorMismatch() float64 {
	return 1 / (1 + math.Exp(-s.LogBayesFactor))
}

// ArmMean is one arm's pre-period mean of a covariate.
type ArmMean struct {
	Arm  string  `json:"arm"`
	N    int64   `json:"n"`
	Mean float64 `json:"mean"`
	SE   float64 `json:"se"`
}

// Imbalance is one metric's pre-exposure balance check; Error says why it
// could not be computed.
type Imbalance struct {
	Metric     string    `json:"metric"`
	Covariate  string    `json:"covariate"`
	Means      []ArmMean `json:"means,omitempty"`
	Statistic  float64   `json:"statistic"`
	DF         int       `json:"df"`
	PValue     float64   `json:"p_value"`
	Alpha      float64   `json:"alpha"`
	Imbalanced bool      `json:"imbalanced"`
	Error      string    `json:"error,omitempty"`
}

// Interaction is the interaction test of one metric between a treatment of
// this experiment and one of another.
type Interaction struct {
	Metric   string  `json:"metric"`
	Arm      string  `json:"arm"`
	Other    string  `json:"other_arm"`
	Estimate float64 `json:"estimate"`
	CILow    float64 `json:"ci_low"`
	CIHigh   float64 `json:"ci_high"`
	PValue   float64 `json:"p_value"`
	// AdjustedPValue is PValue adjusted across all the experiment's overlap
	// tests (Health.OverlapCorrection); Interacts is AdjustedPValue < alpha.
	AdjustedPValue float64 `json:"adjusted_p_value"`
	Interacts      bool    `json:"interacts"`
	Error          string  `json:"error,omitempty"`
}

// Overlap is another experiment sharing units and metrics with this one.
type Overlap struct {
	Experiment   string        `json:"experiment"`
	Layer        string        `json:"layer,omitempty"`
	Units        int64         `json:"units"`
	Interactions []Interaction `json:"interactions"`
}

// Health is the report's health section.
type Health struct {
	SequentialSRM *SequentialSRM `json:"sequential_srm,omitempty"`
	Imbalance     []Imbalance    `json:"imbalance,omitempty"`
	Overlaps      []Overlap      `json:"overlaps"`
	// OverlapCorrection is the multiple-testing correction across the
	// overlaps' interaction tests: "holm", "bh" or "none".
	OverlapCorrection string `json:"overlap_correction,omitempty"`
	// Notes say what could not be checked.
	Notes []string `json:"notes,omitempty"`
}

// healthView is what the template shows of Health.
type healthView struct {
	SRM        *srmRow
	Imbalance  []imbalanceRow
	Overlaps   []overlapRow
	Correction string // of the overlaps' tests, in words
	Notes      []string
	Level      string
}

type srmRow struct {
	P, BF, Posterior, Threshold, Concentration, Verdict string
	Looks                                               int
	Mismatch                                            bool
}

type imbalanceRow struct {
	Metric, Covariate, Means, P, Verdict, Error string
	Imbalanced                                  bool
}

type overlapRow struct {
	Experiment, Layer, Units, Metric, Arms, Estimate, P, Adjusted, Verdict, Error string
	Interacts                                                                     bool
}

// correctionWords names a multiple-testing correction for a table heading.
func correctionWords(c string) string {
	switch c {
	case "holm":
		return "Holm"
	case "bh":
		return "Benjamini–Hochberg"
	case "none", "":
		return "none"
	}
	return c
}

// fmtBF prints a Bayes factor from its logarithm: "2.345", "1.2e+05".
func fmtBF(lbf float64) string {
	if lbf > 700 {
		return "e^" + strconv.FormatFloat(lbf, 'f', 1, 64)
	}
	return fmtNum(math.Exp(lbf))
}

func (r *Report) health() *healthView {
	h := r.Health
	if h == nil {
		return nil
	}
	v := &healthView{Notes: h.Notes, Level: r.level(), Correction: correctionWords(h.OverlapCorrection)}
	if s := h.SequentialSRM; s != nil {
		row := &srmRow{P: fmtP(s.PValue), BF: fmtBF(s.LogBayesFactor), Posterior: fmtShare(s.PosteriorMismatch()),
			Threshold: strconv.FormatFloat(s.Threshold, 'g', -1, 64), Concentration: strconv.FormatFloat(s.Concentration, 'f', -1, 64),
			Looks: s.Looks, Mismatch: s.Mismatch, Verdict: "no mismatch"}
		if s.Mismatch {
			row.Verdict = "MISMATCH"
		}
		v.SRM = row
	}
	for _, x := range h.Imbalance {
		row := imbalanceRow{Metric: x.Metric, Covariate: x.Covariate, Error: x.Error, Imbalanced: x.Imbalanced}
		if x.Error == "" {
			for i, m := range x.Means {
				if i > 0 {
					row.Means += " · "
				}
				row.Means += fmt.Sprintf("%s %s (SE %s)", m.Arm, fmtNum(m.Mean), fmtNum(m.SE))
			}
			row.P = fmtP(x.PValue)
			row.Verdict = "balanced"
			if x.Imbalanced {
				row.Verdict = fmt.Sprintf("IMBALANCED (p < %g)", x.Alpha)
			}
		}
		v.Imbalance = append(v.Imbalance, row)
	}
	for _, o := range h.Overlaps {
		base := overlapRow{Experiment: o.Experiment, Layer: o.Layer, Units: strconv.FormatInt(o.Units, 10)}
		if len(o.Interactions) == 0 {
			base.Error = "no shared metric with a per-unit value to test"
			v.Overlaps = append(v.Overlaps, base)
		}
		for _, x := range o.Interactions {
			row := base
			row.Metric, row.Arms, row.Error, row.Interacts = x.Metric, x.Arm+" × "+x.Other, x.Error, x.Interacts
			if x.Error == "" {
				row.Estimate = fmt.Sprintf("%s [%s, %s]", fmtNum(x.Estimate), fmtNum(x.CILow), fmtNum(x.CIHigh))
				row.P, row.Adjusted = fmtP(x.PValue), fmtP(x.AdjustedPValue)
				row.Verdict = "no interaction"
				if x.Interacts {
					row.Verdict = "INTERACTS"
				}
			}
			v.Overlaps = append(v.Overlaps, row)
		}
	}
	return v
}

// healthHTML is the template of the health section, after the views.
const healthHTML = `{{define "health"}}{{with .H}}
<h2 id="health">Health</h2>
{{with .SRM}}<table id="health-srm"><caption class="meta">Sequential sample-ratio check (Lindon &amp; Malek 2022), anytime-valid over the daily looks: read it as often as you like</caption><thead><tr><th>check</th><th>looks</th><th>Bayes factor (last look)</th><th>posterior P(mismatch)</th><th>p-value</th><th>alarm below</th><th>concentration</th><th>verdict</th></tr></thead><tbody>
<tr class="{{if .Mismatch}}worse{{end}}" data-check="sequential-srm"><td>sequential SRM</td><td class="looks">{{.Looks}}</td><td class="bf">{{.BF}}</td><td class="posterior">{{.Posterior}}</td><td class="p">{{.P}}</td><td class="threshold">{{.Threshold}}</td><td class="concentration">{{.Concentration}}</td><td class="verdict">{{.Verdict}}</td></tr>
</tbody></table>
<p class="meta">The p-value is the running minimum over the looks of 1/BF, the Bayes factor of a Dirichlet–multinomial mixture (concentration c) against the configured split; the posterior probability is BF/(1 + BF), at even prior odds.</p>{{end}}
{{if .Imbalance}}<table id="health-imbalance"><caption class="meta">Pre-exposure balance: each CUPED covariate's pre-period mean by arm (Wald test of equal means)</caption><thead><tr><th>metric</th><th>covariate</th><th>means by arm</th><th>p-value</th><th>verdict</th></tr></thead><tbody>
{{range .Imbalance}}<tr class="{{if .Imbalanced}}worse{{end}}" data-imbalance="{{.Metric}}"><td>{{.Metric}}</td><td>{{.Covariate}}</td><td class="means">{{with .Error}}{{.}}{{else}}{{.Means}}{{end}}</td><td class="p">{{with .P}}{{.}}{{else}}–{{end}}</td><td class="verdict">{{.Verdict}}</td></tr>
{{end}}</tbody></table>{{else}}<p class="meta" id="health-no-imbalance">Pre-exposure balance: no metric of this experiment has a CUPED covariate to check.</p>{{end}}
{{if .Overlaps}}<table id="health-overlaps"><caption class="meta">Experiments of other layers sharing units and metrics with this one: the interaction test of y = b0 + b1·A + b2·B + b3·A·B over the units in both</caption><thead><tr><th>experiment</th><th>layer</th><th>shared units</th><th>metric</th><th>arms</th><th>interaction b3 [{{.Level}} CI]</th><th>p-value</th><th>adjusted p ({{.Correction}})</th><th>verdict</th></tr></thead><tbody>
{{range .Overlaps}}<tr class="{{if .Interacts}}worse{{end}}" data-overlap="{{.Experiment}}" data-metric="{{.Metric}}"><td>{{.Experiment}}</td><td>{{with .Layer}}{{.}}{{else}}none{{end}}</td><td class="units">{{.Units}}</td><td>{{.Metric}}</td><td>{{.Arms}}</td><td class="estimate">{{with .Error}}{{.}}{{else}}{{.Estimate}}{{end}}</td><td class="p">{{with .P}}{{.}}{{else}}–{{end}}</td><td class="adjusted">{{with .Adjusted}}{{.}}{{else}}–{{end}}</td><td class="verdict">{{.Verdict}}</td></tr>
{{end}}</tbody></table><p class="meta">The verdict reads the adjusted p-value: the tests with every overlapping experiment, metric and pair of arms are one family.</p>{{else}}<p class="meta" id="health-no-overlaps">Overlaps: no experiment of another layer shares units and a metric with this one.</p>{{end}}
{{with .Notes}}<ul class="meta" id="health-notes">{{range .}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{end}}{{end}}`

// healthMarkdown writes the health section (as healthHTML) for report.md:
// one row per check, the figures of the HTML's cells.
func (r *Report) healthMarkdown(b *bytes.Buffer) {
	v := r.health()
	if v == nil {
		return
	}
	md := strings.NewReplacer("|", `\|`, "\n", " ")
	b.WriteString("## Health\n\n| check | figures | verdict |\n|---|---|---|\n")
	if s := v.SRM; s != nil {
		fmt.Fprintf(b, "| Sequential sample-ratio check | looks %d · p %s · Bayes factor %s | %s |\n", s.Looks, s.P, s.BF, s.Verdict)
	}
	for _, x := range v.Imbalance {
		figures := x.Error
		if figures == "" {
			figures = "p " + x.P
		}
		fmt.Fprintf(b, "| Imbalance of %s | %s | %s |\n", md.Replace(x.Metric), md.Replace(figures), md.Replace(x.Verdict))
	}
	for _, x := range v.Overlaps {
		figures := "shared units " + x.Units
		if x.Error != "" {
			figures += " · " + x.Error
		} else {
			figures += " · interaction p " + x.P + " · adjusted (" + v.Correction + ") " + x.Adjusted
		}
		fmt.Fprintf(b, "| Overlap with %s | %s | %s |\n", md.Replace(x.Experiment), md.Replace(figures), md.Replace(x.Verdict))
	}
	b.WriteString("\nThe sequential sample-ratio check is anytime-valid (Lindon & Malek 2022); imbalance is each CUPED covariate's pre-period mean by arm (Wald test); overlaps test the interaction with experiments of other layers, the verdict reading the adjusted p-value.\n\n")
	for _, n := range v.Notes {
		fmt.Fprintf(b, "- %s\n", md.Replace(n))
	}
	if len(v.Notes) > 0 {
		b.WriteString("\n")
	}
}
