package did

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Data is the long-format panel that Run analyzes: row i is unit Unit[i] in
// period Time[i] with outcome Y[i]; Treated marks the units of the treated
// group and Post the rows where their treatment is in force (for a single
// rollout, the periods from it on). Cluster is the cluster of each row for CR1
// (nil: the unit).
type Data struct {
	Y             []float64
	Unit, Time    []int
	Treated, Post []bool
	Cluster       []int
}

// RunOptions configure Run.
type RunOptions struct {
	VCE   VCE     // of the 2×2 regression and the event study
	Alpha float64 // 1 − confidence level (0.05 when zero)
	// EventStudy adds the two-way fixed-effects event study and its pre-trend
	// test.
	EventStudy bool
	// Staggered adds the Callaway & Sant'Anna (2021) group-time effects. They
	// are added without it too when the treated units start in more than one
	// period (staggered timing) and the panel is balanced.
	Staggered bool
}

// Effect is one coefficient as Run reports it.
type Effect struct {
	Estimate float64 `json:"estimate"`
	SE       float64 `json:"se"`
	CILow    float64 `json:"ci_low"`
	CIHigh   float64 `json:"ci_high"`
	PValue   float64 `json:"p_value"`
}

func effectOf(c Coef) Effect { return Effect{c.Estimate, c.SE, c.CILow, c.CIHigh, c.PValue} }

// EventEstimate is an event-study or dynamic coefficient at a time relative to
// the treatment start (0 = the first treated period).
type EventEstimate struct {
	RelTime int `json:"rel_time" doc:"periods since the treatment start (0); -1 is the reference of the TWFE event study"`
	Effect
}

// PreTrendReport is the joint test that the event study's leads are zero.
type PreTrendReport struct {
	Tested  bool     `json:"tested"`
	F       *float64 `json:"f"`
	Q       int      `json:"q"`
	DOF     *float64 `json:"dof"`
	PValue  *float64 `json:"p_value"`
	Warning string   `json:"warning,omitempty"`
	Note    string   `json:"note,omitempty"`
}

// GroupTimeEstimate is ATT(g,t).
type GroupTimeEstimate struct {
	Group int `json:"group" doc:"the cohort: its first treated period"`
	Time  int `json:"time"`
	Base  int `json:"base" doc:"the period the change is measured from"`
	Effect
	NTreated int `json:"n_treated" doc:"units of the cohort"`
	NControl int `json:"n_control" doc:"never- and not-yet-treated comparison units"`
}

// GroupEstimate is the average effect on one cohort over its treated periods.
type GroupEstimate struct {
	Group int `json:"group"`
	Effect
}

// StaggeredReport is the Callaway & Sant'Anna result (see CallawaySantAnna):
// the group-time effects and did::aggte's simple, dynamic and group
// aggregations, with analytic (influence-function) standard errors and normal
// intervals.
type StaggeredReport struct {
	ATT            []GroupTimeEstimate `json:"att_gt" doc:"ATT(g,t) by cohort, then period; t < g are pre-period placebos"`
	Simple         Effect              `json:"simple" doc:"post cells weighted by cohort size"`
	Dynamic        []EventEstimate     `json:"dynamic" doc:"θ(e): cohorts at e periods since their start, weighted by size"`
	DynamicOverall Effect              `json:"dynamic_overall" doc:"mean of θ(e) over e ≥ 0"`
	Group          []GroupEstimate     `json:"group" doc:"θ(g): mean of ATT(g,t) over t ≥ g"`
	GroupOverall   Effect              `json:"group_overall" doc:"θ(g) weighted by cohort size"`
	NUnits         int                 `json:"n_units"`
	Dropped        int                 `json:"dropped_units" doc:"units treated in the first period, left out (no pre-period)"`
	Control        string              `json:"control_group"`
	BasePeriod     string              `json:"base_period"`
}

// Report is the result of Run, what "lift did" prints and POST
// /v1/analyses/did answers.
type Report struct {
	Estimate  float64            `json:"estimate" doc:"treated×post coefficient: the difference in differences"`
	SE        float64            `json:"se"`
	CILow     float64            `json:"ci_low"`
	CIHigh    float64            `json:"ci_high"`
	PValue    float64            `json:"p_value"`
	DOF       float64            `json:"dof"`
	NObs      int                `json:"n_obs"`
	NClusters int                `json:"n_clusters"`
	VCE       string             `json:"vce"`
	Alpha     float64            `json:"alpha"`
	Cells     map[string]float64 `json:"cells" doc:"mean of treated_pre, treated_post, control_pre, control_post"`
	CellN     map[string]int     `json:"cell_n"`
	// Cohorts are the distinct first treated periods of the treated units.
	Cohorts []int `json:"cohorts" doc:"distinct first treated periods; more than one is staggered timing"`
	// StaggeredTiming is set when the cohorts are more than one; Warning then
	// says why the TWFE results are biased and points to Staggered.
	StaggeredTiming bool             `json:"staggered_timing"`
	Warning         string           `json:"warning,omitempty"`
	Events          []EventEstimate  `json:"event_study,omitempty"`
	PreTrend        *PreTrendReport  `json:"pretrend,omitempty"`
	Staggered       *StaggeredReport `json:"staggered,omitempty" doc:"Callaway & Sant'Anna group-time effects and aggregations"`
}

// Run is the difference-in-differences pipeline behind "lift did" and POST
// /v1/analyses/did: the regression y ~ treated + post + treated×post
// (Regress) with its cell means; with o.EventStudy the two-way fixed-effects
// event study (EventStudy) over the cohorts the rows imply (the first period
// of each unit with Treated and Post); and, with o.Staggered or when the
// timing is staggered, CallawaySantAnna over the same cohorts with
// not-yet-treated controls. Every coefficient must have a positive finite
// standard error: an exact fit is an error. Errors are data conditions.
func Run(d Data, o RunOptions) (*Report, error) {
	n := len(d.Y)
	if len(d.Unit) != n || len(d.Time) != n || len(d.Treated) != n || len(d.Post) != n || (d.Cluster != nil && len(d.Cluster) != n) {
		panic(fmt.Sprintf("did: Run: lengths %d, %d, %d, %d, %d, %d differ", n, len(d.Unit), len(d.Time), len(d.Treated), len(d.Post), len(d.Cluster)))
	}
	if o.Alpha == 0 {
		o.Alpha = 0.05
	}
	cluster := d.Cluster
	if cluster == nil {
		cluster = d.Unit
	}
	r, err := Regress(d.Y, d.Treated, d.Post, cluster, o.VCE, o.Alpha)
	if err != nil {
		return nil, err
	}
	if err := positiveSE("treated×post", r.Effect); err != nil {
		return nil, err
	}
	e := r.Effect
	out := &Report{Estimate: e.Estimate, SE: e.SE, CILow: e.CILow, CIHigh: e.CIHigh, PValue: e.PValue, DOF: r.Fit.DF,
		NObs: r.Fit.N, NClusters: r.Fit.G, VCE: o.VCE.String(), Alpha: o.Alpha,
		Cells: map[string]float64{}, CellN: map[string]int{}}
	for _, x := range []struct {
		k string
		c Cell
	}{{"treated_pre", r.Cells.TreatedPre}, {"treated_post", r.Cells.TreatedPost}, {"control_pre", r.Cells.ControlPre}, {"control_post", r.Cells.ControlPost}} {
		out.Cells[x.k], out.CellN[x.k] = x.c.Mean, x.c.N
	}
	inForce := make([]bool, n)
	for i := range n {
		inForce[i] = d.Treated[i] && d.Post[i]
	}
	cohort := Cohorts(d.Unit, d.Time, inForce)
	seen := map[int]bool{}
	for _, g := range cohort {
		if g != NeverTreated && !seen[g] {
			seen[g] = true
			out.Cohorts = append(out.Cohorts, g)
		}
	}
	sort.Ints(out.Cohorts)
	out.StaggeredTiming = len(out.Cohorts) > 1
	if o.EventStudy {
		es, err := EventStudy(Panel{Unit: d.Unit, Time: d.Time, Y: d.Y}, cohort,
			EventStudyOptions{TWFEOptions: TWFEOptions{VCE: o.VCE, Cluster: d.Cluster, Alpha: o.Alpha}})
		if err != nil {
			return nil, fmt.Errorf("event study: %w", err)
		}
		for _, k := range es.Coefs {
			if err := positiveSE(fmt.Sprintf("event-study coefficient %d", k.RelTime), k.Coef); err != nil {
				return nil, err
			}
			out.Events = append(out.Events, EventEstimate{k.RelTime, effectOf(k.Coef)})
		}
		pt := &PreTrendReport{Tested: es.PreTrend.Tested, Q: es.PreTrend.Q, Warning: es.PreTrend.Warning}
		if pt.Tested {
			pt.F, pt.DOF, pt.PValue = &es.PreTrend.F, &es.PreTrend.DF, &es.PreTrend.PValue
		} else {
			pt.Note = "no lead to test: no treated unit is observed two or more periods before its start"
		}
		out.PreTrend = pt
	}
	if !o.Staggered && !out.StaggeredTiming {
		return out, nil
	}
	cs, err := CallawaySantAnna(Panel{Unit: d.Unit, Time: d.Time, Y: d.Y}, cohort, o.Alpha)
	if err == nil {
		out.Staggered, err = staggeredReport(cs)
	}
	switch {
	case err != nil && o.Staggered:
		return nil, fmt.Errorf("Callaway & Sant'Anna: %w", err)
	case err != nil:
		out.Warning = fmt.Sprintf("treatment timing is staggered (%d cohorts, first treated in periods %s): "+
			"the treated×post and event-study coefficients are biased when effects differ across cohorts or grow over time, "+
			"because earlier-treated units serve as controls for later ones (Goodman-Bacon 2021; Sun & Abraham 2021); "+
			"the Callaway & Sant'Anna estimator could not run: %v", len(out.Cohorts), joinInts(out.Cohorts), err)
	case out.StaggeredTiming:
		out.Warning = fmt.Sprintf("treatment timing is staggered (%d cohorts, first treated in periods %s): "+
			"the treated×post and event-study coefficients are biased when effects differ across cohorts or grow over time, "+
			"because earlier-treated units serve as controls for later ones (Goodman-Bacon 2021; Sun & Abraham 2021); "+
			"use the Callaway & Sant'Anna result in \"staggered\"", len(out.Cohorts), joinInts(out.Cohorts))
	}
	return out, nil
}

func staggeredReport(cs *Staggered) (*StaggeredReport, error) {
	s := &StaggeredReport{NUnits: cs.NUnits, Dropped: cs.Dropped, Control: "not yet treated", BasePeriod: "varying"}
	for _, a := range cs.ATT {
		if err := positiveSE(a.Name, a.Coef); err != nil {
			return nil, err
		}
		s.ATT = append(s.ATT, GroupTimeEstimate{Group: a.Group, Time: a.Time, Base: a.Base, Effect: effectOf(a.Coef), NTreated: a.NTreated, NControl: a.NControl})
	}
	for _, c := range []Coef{cs.Simple, cs.Overall, cs.GroupOverall} {
		if err := positiveSE(c.Name+" aggregation", c); err != nil {
			return nil, err
		}
	}
	s.Simple, s.DynamicOverall, s.GroupOverall = effectOf(cs.Simple), effectOf(cs.Overall), effectOf(cs.GroupOverall)
	for _, e := range cs.Dynamic {
		s.Dynamic = append(s.Dynamic, EventEstimate{e.RelTime, effectOf(e.Coef)})
	}
	for _, g := range cs.Group {
		s.Group = append(s.Group, GroupEstimate{g.Group, effectOf(g.Coef)})
	}
	return s, nil
}

// ErrExactFit is returned (wrapped) by Run when a coefficient's standard error
// is zero or undefined: the model fits the outcome exactly.
var ErrExactFit = errors.New("the model fits the outcome exactly")

func positiveSE(what string, c Coef) error {
	for _, v := range []float64{c.Estimate, c.SE, c.CILow, c.CIHigh, c.PValue} {
		if math.IsNaN(v) || math.IsInf(v, 0) || !(c.SE > 0) {
			return fmt.Errorf("%s: standard error is zero or undefined (estimate %g, se %g): %w", what, c.Estimate, c.SE, ErrExactFit)
		}
	}
	return nil
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ", ")
}
