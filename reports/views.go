package reports

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// The report's further views, each computed by its own pipeline elsewhere and
// only shown here: a bandit's allocation over time (its weight history, the
// chance each arm is best and the regret), the segment breakdown, the quantile
// differences and the Bayesian view of each comparison. A DP report has none
// of them (they have no DP release); Hidden then says so.

// Bayesian is the posterior of a comparison's relative effect (GrowthBook's
// Bayesian engine): mean, credible interval, chance to win and the risks
// (expected loss of keeping the control, of shipping the variant).
type Bayesian struct {
	Expected      float64 `json:"expected"`
	CILow         float64 `json:"ci_low"`
	CIHigh        float64 `json:"ci_high"`
	ChanceToWin   float64 `json:"chance_to_win"`
	RiskControl   float64 `json:"risk_control"`
	RiskTreatment float64 `json:"risk_treatment"`
}

// BanditVersion is one weight version of a bandit.
type BanditVersion struct {
	Version  int       `json:"version"`
	At       time.Time `json:"at"`
	Weights  []float64 `json:"weights"`
	ProbBest []float64 `json:"prob_best"`
	BurnIn   bool      `json:"burn_in"`
}

// BanditEffect is a variant's cohort-stratified effect against the first
// variant, with the naive pooled difference for contrast.
type BanditEffect struct {
	Variant string `json:"variant"`
	Interval
	Naive float64 `json:"naive"`
}

// Bandit is a bandit experiment's state.
type Bandit struct {
	Variants []string        `json:"variants"`
	Versions []BanditVersion `json:"versions"`
	Effects  []BanditEffect  `json:"effects"`
	ArmMeans []float64       `json:"arm_means"`
	Regret   float64         `json:"regret"`
	Level    float64         `json:"level"`
}

// Segment is one segment's effect.
type Segment struct {
	Segment           string   `json:"segment"`
	Control           int64    `json:"control_units"`
	Treated           int64    `json:"treated_units"`
	Absolute          Estimate `json:"absolute"`
	Adjusted          float64  `json:"adjusted_p_value"`             // across segments
	InteractionAdjust float64  `json:"interaction_adjusted_p_value"` // this segment's effect against the rest's
	Differs           bool     `json:"differs"`
}

// Segments is a breakdown of one metric's effect by a unit attribute.
type Segments struct {
	Metric         string    `json:"metric"`
	Attribute      string    `json:"attribute"`
	Control        string    `json:"control"`
	Treatment      string    `json:"treatment"`
	Correction     string    `json:"correction"`
	Segments       []Segment `json:"segments"`
	Merged         int       `json:"merged_segments"`
	HeterogeneityP *float64  `json:"heterogeneity_p_value,omitempty"` // Cochran's Q
	PostStratified *Estimate `json:"post_stratified,omitempty"`       // the overall effect post-stratified on the segments
	// CUPEDPostStratified is GrowthBook's CUPEDps over the same segments, each
	// segment's effect regression-adjusted on Covariate (the metric has a
	// pre-exposure covariate).
	CUPEDPostStratified *Estimate `json:"cuped_post_stratified,omitempty"`
	Covariate           string    `json:"covariate,omitempty"`
}

// Quantile is one quantile's difference.
type Quantile struct {
	Quantile float64  `json:"quantile"`
	Control  float64  `json:"control"`
	Treated  float64  `json:"treated"`
	Absolute Estimate `json:"absolute"`
}

// Quantiles are the differences of one metric's quantiles.
type Quantiles struct {
	Metric    string     `json:"metric"`
	Control   string     `json:"control"`
	Treatment string     `json:"treatment"`
	Method    string     `json:"method"`
	Quantiles []Quantile `json:"quantiles"`
}

// Allocation plots a bandit's weight per arm at each weight version.
type Allocation struct {
	Variants []string        `json:"variants"`
	Versions []BanditVersion `json:"versions"`
	Privacy  Privacy         `json:"privacy"`
}

// Name is "allocation".
func (*Allocation) Name() string { return "allocation" }

func (c *Allocation) build() (*plot.Plot, error) {
	if len(c.Versions) == 0 {
		return nil, chartErr(c, "versions", "no weight version to plot")
	}
	p := newPlot("Bandit allocation by weight version", c.Privacy, "weight version", "share of new units (%)")
	last := c.Versions[len(c.Versions)-1].Version
	for a, name := range c.Variants {
		var xys plotter.XYs
		for i, v := range c.Versions {
			if len(v.Weights) != len(c.Variants) {
				return nil, chartErr(c, fmt.Sprintf("versions[%d].weights", i), "has %d weights for %d variants", len(v.Weights), len(c.Variants))
			}
			w := 100 * v.Weights[a]
			if math.IsNaN(w) || math.IsInf(w, 0) {
				return nil, chartErr(c, fmt.Sprintf("versions[%d].weights[%d]", i, a), "not finite")
			}
			end := float64(last + 1)
			if i+1 < len(c.Versions) {
				end = float64(c.Versions[i+1].Version)
			}
			xys = append(xys, plotter.XY{X: float64(v.Version), Y: w}, plotter.XY{X: end, Y: w})
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return nil, err
		}
		l.Color, l.Width = lineColor(a), vg.Points(2)
		p.Add(l)
		p.Legend.Add(name, l)
	}
	p.X.Min, p.X.Max = float64(c.Versions[0].Version), float64(last+1)
	p.X.Tick.Marker = integerTicks{} // weight versions are whole numbers
	p.Y.Min, p.Y.Max = 0, 100
	legendRoom(p)
	return p, nil
}

// views is what the report template shows of the views.
type views struct {
	Bandit    *banditView
	Segments  *Segments
	SegRows   []segRow
	SegHet    string // the heterogeneity p-value
	SegPS     string // the post-stratified effect
	SegCPS    string // CUPEDps
	Quantiles *Quantiles
	QRows     []qRow
	Bayes     []bayesRow
	Hidden    []string
	Level     string
}

type banditView struct {
	Variants []string
	Arms     []banditArm
	Versions []banditVersionRow
	Regret   string
}

type banditArm struct {
	Variant, Mean, ProbBest, Weight, Effect, Naive string
}

type banditVersionRow struct {
	Version       int
	At            string
	Weights, Best []string
	BurnIn        bool
}

type segRow struct {
	Segment, Control, Treated, Effect, P, Interaction string
	Differs                                           bool
}

type qRow struct {
	Q, Control, Treated, Diff string
}

type bayesRow struct {
	Metric, Variant, Expected, Chance, RiskControl, RiskTreatment string
}

func fmtShare(v float64) string { return strconv.FormatFloat(100*v, 'f', 2, 64) + "%" }

func (r *Report) views() views {
	v := views{Hidden: r.Hidden, Level: r.level(), Segments: r.Segments, Quantiles: r.Quantiles}
	if b := r.Bandit; b != nil && len(b.Versions) > 0 {
		bv := &banditView{Variants: b.Variants, Regret: fmtNum(b.Regret)}
		cur := b.Versions[len(b.Versions)-1]
		effs := map[string]BanditEffect{}
		for _, e := range b.Effects {
			effs[e.Variant] = e
		}
		for i, name := range b.Variants {
			a := banditArm{Variant: name, Mean: "–", ProbBest: "–", Weight: "–", Effect: "control", Naive: "–"}
			if i < len(b.ArmMeans) {
				a.Mean = fmtNum(b.ArmMeans[i])
			}
			if i < len(cur.ProbBest) {
				a.ProbBest = fmtShare(cur.ProbBest[i])
			}
			if i < len(cur.Weights) {
				a.Weight = fmtShare(cur.Weights[i])
			}
			if i > 0 {
				a.Effect = "–"
				if e, ok := effs[name]; ok {
					a.Effect = fmt.Sprintf("%s [%s, %s]", fmtNum(e.Estimate), fmtNum(e.Low), fmtNum(e.High))
					a.Naive = fmtNum(e.Naive)
				}
			}
			bv.Arms = append(bv.Arms, a)
		}
		for _, ver := range b.Versions {
			row := banditVersionRow{Version: ver.Version, At: ver.At.UTC().Format("2006-01-02 15:04"), BurnIn: ver.BurnIn}
			for i := range b.Variants {
				w, pb := "–", "–"
				if i < len(ver.Weights) {
					w = fmtShare(ver.Weights[i])
				}
				if i < len(ver.ProbBest) {
					pb = fmtShare(ver.ProbBest[i])
				}
				row.Weights, row.Best = append(row.Weights, w), append(row.Best, pb)
			}
			bv.Versions = append(bv.Versions, row)
		}
		v.Bandit = bv
	}
	if s := r.Segments; s != nil {
		for _, x := range s.Segments {
			v.SegRows = append(v.SegRows, segRow{Segment: x.Segment, Control: strconv.FormatInt(x.Control, 10), Treated: strconv.FormatInt(x.Treated, 10),
				Effect: fmtCI(x.Absolute, false), P: fmtP(x.Adjusted), Interaction: fmtP(x.InteractionAdjust), Differs: x.Differs})
		}
		if s.HeterogeneityP != nil {
			v.SegHet = "p = " + fmtP(*s.HeterogeneityP)
			if *s.HeterogeneityP < 1e-4 {
				v.SegHet = "p < 0.0001"
			}
		}
		if s.PostStratified != nil {
			v.SegPS = fmtCI(*s.PostStratified, false)
		}
		if s.CUPEDPostStratified != nil {
			v.SegCPS = fmtCI(*s.CUPEDPostStratified, false) + ", each segment regression-adjusted on " + s.Covariate
		}
	}
	if q := r.Quantiles; q != nil {
		for _, x := range q.Quantiles {
			v.QRows = append(v.QRows, qRow{Q: "p" + strconv.FormatFloat(100*x.Quantile, 'f', -1, 64), Control: fmtNum(x.Control), Treated: fmtNum(x.Treated), Diff: fmtCI(x.Absolute, false)})
		}
	}
	for _, x := range r.ordered() {
		if b := x.Bayesian; b != nil {
			v.Bayes = append(v.Bayes, bayesRow{Metric: x.Metric, Variant: x.Variant,
				Expected:    fmt.Sprintf("%+.2f%% [%+.2f%%, %+.2f%%]", 100*b.Expected, 100*b.CILow, 100*b.CIHigh),
				Chance:      fmtShare(b.ChanceToWin),
				RiskControl: fmtNum(b.RiskControl), RiskTreatment: fmtNum(b.RiskTreatment)})
		}
	}
	return v
}

// viewsHTML is the template of the views, after the results table.
const viewsHTML = `{{define "views"}}{{with .V}}
{{if .Bayes}}<h2 id="bayesian">Bayesian view</h2>
<table id="bayesian-table"><thead><tr><th>metric</th><th>variant</th><th>relative effect, posterior mean [{{.Level}} credible interval]</th><th>chance to win</th><th>risk of keeping control</th><th>risk of shipping variant</th></tr></thead><tbody>
{{range .Bayes}}<tr data-bayes-metric="{{.Metric}}" data-variant="{{.Variant}}"><td>{{.Metric}}</td><td>{{.Variant}}</td><td>{{.Expected}}</td><td>{{.Chance}}</td><td>{{.RiskControl}}</td><td>{{.RiskTreatment}}</td></tr>
{{end}}</tbody></table>
<p class="meta">GrowthBook's Bayesian engine: a Gaussian posterior of the relative effect from the frequentist estimate and its standard error; risks are relative expected losses.</p>{{end}}
{{with .Bandit}}<h2 id="bandit">Bandit</h2>
<table id="bandit-arms"><thead><tr><th>variant</th><th>reward mean</th><th>current weight</th><th>chance to be best</th><th>effect vs first variant [{{$.V.Level}} CI]</th><th>naive difference</th></tr></thead><tbody>
{{range .Arms}}<tr data-arm="{{.Variant}}"><td>{{.Variant}}</td><td>{{.Mean}}</td><td>{{.Weight}}</td><td>{{.ProbBest}}</td><td>{{.Effect}}</td><td>{{.Naive}}</td></tr>
{{end}}</tbody></table>
<p id="bandit-regret">Cumulative regret (reward lost against always serving the best arm): {{.Regret}}.</p>
<table id="bandit-versions"><caption class="meta">Weight history (share of new units per version; chance to be best when it was computed)</caption><thead><tr><th>version</th><th>computed</th>{{range .Variants}}<th>{{.}} weight</th>{{end}}{{range .Variants}}<th>{{.}} P(best)</th>{{end}}</tr></thead><tbody>
{{range .Versions}}<tr data-version="{{.Version}}"><td>{{.Version}}{{if .BurnIn}} (burn-in){{end}}</td><td>{{.At}}</td>{{range .Weights}}<td>{{.}}</td>{{end}}{{range .Best}}<td>{{.}}</td>{{end}}</tr>
{{end}}</tbody></table>{{end}}
{{with .Segments}}<h2 id="segments">Segments of {{.Metric}} by {{.Attribute}}</h2>
<table id="segments-table"><thead><tr><th>segment</th><th>units ({{.Control}})</th><th>units ({{.Treatment}})</th><th>absolute effect [{{$.V.Level}} CI]</th><th>adjusted p ({{.Correction}})</th><th>differs from the rest (adjusted p)</th></tr></thead><tbody>
{{range $.V.SegRows}}<tr data-segment="{{.Segment}}"><td>{{.Segment}}</td><td>{{.Control}}</td><td>{{.Treated}}</td><td>{{.Effect}}</td><td>{{.P}}</td><td>{{.Interaction}}{{if .Differs}} · differs{{end}}</td></tr>
{{end}}</tbody></table>
<p class="meta" id="segments-summary">{{with $.V.SegHet}}Heterogeneity (Cochran's Q): {{.}}.{{end}}{{with $.V.SegPS}} Post-stratified overall effect: {{.}}.{{end}}{{with $.V.SegCPS}} With CUPED (CUPEDps): {{.}}.{{end}}{{if .Merged}} {{.Merged}} small segments are merged into "(other)".{{end}}</p>{{end}}
{{with .Quantiles}}<h2 id="quantiles">Quantiles of {{.Metric}}</h2>
<table id="quantiles-table"><thead><tr><th>quantile</th><th>{{.Control}}</th><th>{{.Treatment}}</th><th>difference [{{$.V.Level}} CI]</th></tr></thead><tbody>
{{range $.V.QRows}}<tr data-quantile="{{.Q}}"><td>{{.Q}}</td><td>{{.Control}}</td><td>{{.Treated}}</td><td>{{.Diff}}</td></tr>
{{end}}</tbody></table>
<p class="meta">{{.Method}}.</p>{{end}}
{{if .Hidden}}<div class="banner private" id="hidden-views"><p>Not in this report:</p><ul>{{range .Hidden}}<li>{{.}}</li>{{end}}</ul></div>{{end}}
{{end}}{{end}}`
