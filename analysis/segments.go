package analysis

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/liftlab/lift/experiment"
	"gonum.org/v1/gonum/stat/distuv"
)

// Segment breakdowns and post-stratification over per-unit values labelled by
// a unit attribute (country, device, plan). SegmentRun is the one pipeline of
// "lift segments" and POST /v1/analyses/segments.

// Defaults of SegmentOptions.
const (
	DefaultMaxSegments = 20
	// OtherSegment names the segment into which the smallest segments are
	// merged when there are more than MaxSegments.
	OtherSegment = "(other)"
)

// Flags of a segment breakdown.
const (
	// FlagPostStratificationNotApplied: a segment has fewer than 2 units in an
	// arm (or no variance), so the post-stratified estimate is left out.
	FlagPostStratificationNotApplied = "post_stratification_not_applied"
)

// SegmentRow is one unit: its segment (the attribute's value), arm and metric
// value.
type SegmentRow struct {
	Segment string
	Arm     string
	Value   float64
	// Covariate is the unit's pre-exposure covariate (SegmentOptions.Covariate).
	Covariate float64
}

// SegmentOptions configure SegmentRun. Zero values mean the documented
// defaults.
type SegmentOptions struct {
	Metric    string // copied to the report
	Attribute string // copied to the report
	Control   string // required: the control arm
	Treatment string // required: the treated arm
	Type      Type   // Mean (default) or Proportion
	Alpha     float64
	// Correction adjusts the per-segment p-values across segments; default Holm.
	Correction Correction
	// MaxSegments caps the segments shown (default 20): the largest
	// MaxSegments−1 by units are kept and the rest merged into OtherSegment.
	MaxSegments int
	// Covariate: the rows carry a pre-exposure covariate, and the report adds
	// the effect post-stratified on the segments with each segment's effect
	// regression-adjusted on it (GrowthBook's CUPEDps, PostStratify).
	Covariate bool
	// CovariateName is copied to the report.
	CovariateName string
}

// SegmentEffect is one segment's comparison of treatment with control.
type SegmentEffect struct {
	Segment  string  `json:"segment"`
	Control  int64   `json:"control_units"`
	Treated  int64   `json:"treated_units"`
	Absolute Effect  `json:"absolute"`
	Relative Effect  `json:"relative"`
	Adjusted float64 `json:"adjusted_p_value"` // Absolute.PValue adjusted across segments
	// Rest is the absolute effect among the units of every other segment;
	// Interaction tests Absolute − Rest (z-test, the samples being disjoint),
	// its p-value adjusted across segments in InteractionAdjusted (normal: dof 0).
	Rest                Effect   `json:"rest"`
	Interaction         Effect   `json:"interaction"`
	InteractionAdjusted float64  `json:"interaction_adjusted_p_value"`
	Differs             bool     `json:"differs"` // InteractionAdjusted < α
	Flags               []string `json:"flags,omitempty"`
}

// Heterogeneity is Cochran's Q test that every segment has the same effect:
// Q = Σ w_k(τ_k − τ̄)², w_k = 1/SE_k², τ̄ = Σw_kτ_k/Σw_k, χ² with K − 1 degrees
// of freedom under the null (Cochran 1954), over the segments whose effect
// could be estimated.
type Heterogeneity struct {
	Q             float64 `json:"q"`
	DF            int     `json:"dof"`
	PValue        float64 `json:"p_value"`
	I2            float64 `json:"i2"` // Higgins & Thompson (2002): max(0, (Q − df)/Q)
	Segments      int     `json:"segments"`
	Heterogeneous bool    `json:"heterogeneous"` // PValue < α
}

// SegmentReport is the answer of SegmentRun.
type SegmentReport struct {
	Metric     string          `json:"metric,omitempty"`
	Attribute  string          `json:"attribute,omitempty"`
	Type       Type            `json:"type"`
	Control    string          `json:"control"`
	Treatment  string          `json:"treatment"`
	Alpha      float64         `json:"alpha"`
	Correction Correction      `json:"correction"`
	Overall    Comparison      `json:"overall"`
	Segments   []SegmentEffect `json:"segments"`
	// Merged is the number of segments merged into OtherSegment (0: none).
	Merged        int            `json:"merged_segments"`
	Heterogeneity *Heterogeneity `json:"heterogeneity,omitempty"`
	// PostStratified is the overall absolute effect post-stratified on the
	// segments (Miratrix, Sekhon & Yu 2013): Σ_k w_k τ_k with w_k = n_k/n, the
	// segment's share of the units, and variance Σ_k w_k² SE_k² (their
	// conditional variance, eq. 5, without finite-population terms; equal to
	// the HC2 variance of Lin's regression on centered segment indicators).
	// The interval and p-value are normal (large-sample; dof 0). Valid as an
	// adjustment only for an attribute fixed before exposure.
	PostStratified *Effect `json:"post_stratified,omitempty"`
	// CUPEDPostStratified, with a covariate, is GrowthBook's CUPEDps over the
	// same segments (PostStratify): the segments' regression-adjusted effects
	// weighted by their shares, the shares' randomness in the variance.
	CUPEDPostStratified *PostStratified `json:"cuped_post_stratified,omitempty"`
	Covariate           string          `json:"covariate,omitempty"`
	Flags               []string        `json:"flags,omitempty"`
}

type segSums struct {
	name string
	arm  [2]Arm   // control, treatment
	ps   [2]PSArm // the same units' sums with the covariate, for PostStratify
}

func (s *segSums) units() int64 { return s.arm[0].N + s.arm[1].N }

// SegmentRun breaks the comparison of o.Treatment with o.Control down by
// segment. Rows of other arms are left out. The sums are over values shifted by
// their overall mean (exact whatever the offset). Bad options give an Invalid
// error naming the field; segments too small to estimate are flagged.
func SegmentRun(ctx context.Context, rows []SegmentRow, o SegmentOptions) (*SegmentReport, error) {
	const op = "analysis.SegmentRun"
	if o.Type == "" {
		o.Type = Mean
	}
	if o.Type != Mean && o.Type != Proportion {
		return nil, experiment.E(op, experiment.Invalid, experiment.Field("type"), experiment.Errorf("must be mean or proportion, got %q", o.Type))
	}
	if o.Alpha == 0 {
		o.Alpha = DefaultAlpha
	}
	if err := checkAlpha(op, o.Alpha); err != nil {
		return nil, err
	}
	if o.Correction == NoCorrection {
		o.Correction = Holm
	}
	if o.Correction != Holm && o.Correction != BenjaminiHochberg {
		return nil, experiment.E(op, experiment.Invalid, experiment.Field("correction"), experiment.Errorf("must be holm or bh, got %q", o.Correction))
	}
	if o.MaxSegments == 0 {
		o.MaxSegments = DefaultMaxSegments
	}
	if o.MaxSegments < 2 {
		return nil, experiment.E(op, experiment.Invalid, experiment.Field("max_segments"), experiment.Errorf("must be at least 2, got %d", o.MaxSegments))
	}
	if o.Control == "" || o.Treatment == "" || o.Control == o.Treatment {
		return nil, experiment.E(op, experiment.Invalid, experiment.Field("treatment"), experiment.Errorf("control and treatment must be two different arms, got %q and %q", o.Control, o.Treatment))
	}

	// Pilot shifts: the means of the analyzed values and covariates.
	var shift, xshift float64
	var count int
	for _, r := range rows {
		if r.Arm != o.Control && r.Arm != o.Treatment {
			continue
		}
		if math.IsNaN(r.Value) || math.IsInf(r.Value, 0) {
			return nil, experiment.E(op, experiment.Invalid, experiment.Field("value"), experiment.Errorf("unit in segment %q: value %g is not finite", r.Segment, r.Value))
		}
		if o.Covariate && (math.IsNaN(r.Covariate) || math.IsInf(r.Covariate, 0)) {
			return nil, experiment.E(op, experiment.Invalid, experiment.Field("covariate"), experiment.Errorf("unit in segment %q: covariate %g is not finite", r.Segment, r.Covariate))
		}
		count++
		shift += (r.Value - shift) / float64(count)
		xshift += (r.Covariate - xshift) / float64(count)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	index := map[string]int{}
	var segs []*segSums
	var total segSums
	for _, r := range rows {
		j := 0
		switch r.Arm {
		case o.Control:
		case o.Treatment:
			j = 1
		default:
			continue
		}
		k, ok := index[r.Segment]
		if !ok {
			k = len(segs)
			index[r.Segment] = k
			segs = append(segs, &segSums{name: r.Segment})
		}
		d := r.Value - shift
		for _, a := range []*Arm{&segs[k].arm[j], &total.arm[j]} {
			a.N++
			a.Sum += d
			a.SumSquares += d * d
		}
		if o.Covariate {
			x := r.Covariate - xshift
			segs[k].ps[j].add(PSArm{N: 1, Y: d, YY: d * d, X: x, XX: x * x, XY: x * d})
		}
	}
	if total.arm[0].N == 0 || total.arm[1].N == 0 {
		return nil, experiment.E(op, experiment.InsufficientData, experiment.Errorf("arms %q and %q need units, have %d and %d", o.Control, o.Treatment, total.arm[0].N, total.arm[1].N))
	}
	slices.SortFunc(segs, func(a, b *segSums) int {
		if c := cmp.Compare(b.units(), a.units()); c != 0 {
			return c
		}
		return cmp.Compare(a.name, b.name)
	})
	merged := 0
	if len(segs) > o.MaxSegments {
		other := &segSums{name: OtherSegment}
		for _, s := range segs[o.MaxSegments-1:] {
			for j := range 2 {
				other.arm[j].N += s.arm[j].N
				other.arm[j].Sum += s.arm[j].Sum
				other.arm[j].SumSquares += s.arm[j].SumSquares
				other.ps[j].add(s.ps[j])
			}
		}
		merged = len(segs) - (o.MaxSegments - 1)
		segs = append(segs[:o.MaxSegments-1], other)
	}

	compare := func(s *segSums) (Comparison, error) {
		a, b := s.arm[0], s.arm[1]
		a.Name, b.Name = o.Control, o.Treatment
		a.Shift, b.Shift = shift, shift
		res, err := Analyze(Input{Type: o.Type, Arms: []Arm{a, b}, Alpha: o.Alpha})
		if err != nil {
			return Comparison{}, experiment.E(op, fmt.Errorf("segment %q: %w", s.name, err))
		}
		return res.Comparisons[0], nil
	}
	overall, err := compare(&total)
	if err != nil {
		return nil, err
	}
	rep := &SegmentReport{
		Metric: o.Metric, Attribute: o.Attribute, Type: o.Type, Control: o.Control, Treatment: o.Treatment,
		Alpha: o.Alpha, Correction: o.Correction, Overall: overall, Merged: merged, Segments: []SegmentEffect{},
	}
	var p, pi []float64
	ok := make([]bool, len(segs))
	postStrat := true
	var ps, psVar float64
	n := float64(total.units())
	z := distuv.UnitNormal
	for k, s := range segs {
		c, err := compare(s)
		if err != nil {
			return nil, err
		}
		var rest segSums
		for j := range 2 {
			rest.arm[j] = Arm{N: total.arm[j].N - s.arm[j].N, Sum: total.arm[j].Sum - s.arm[j].Sum, SumSquares: total.arm[j].SumSquares - s.arm[j].SumSquares}
		}
		rest.name = "rest of " + s.name
		rc, err := compare(&rest)
		if err != nil {
			return nil, err
		}
		e := SegmentEffect{Segment: s.name, Control: s.arm[0].N, Treated: s.arm[1].N, Absolute: c.Absolute, Relative: c.Relative, Rest: rc.Absolute, Flags: c.Flags}
		estimable := !slices.Contains(c.Flags, FlagInsufficientData) && !slices.Contains(c.Flags, FlagZeroVariance) && c.Absolute.SE > 0
		restOK := !slices.Contains(rc.Flags, FlagInsufficientData) && !slices.Contains(rc.Flags, FlagZeroVariance) && rc.Absolute.SE > 0
		ok[k] = estimable
		e.Interaction = Effect{PValue: 1}
		if estimable && restOK {
			d := c.Absolute.Estimate - rc.Absolute.Estimate
			se := math.Hypot(c.Absolute.SE, rc.Absolute.SE)
			q := z.Quantile(1 - o.Alpha/2)
			e.Interaction = Effect{Estimate: d, SE: se, CILow: d - q*se, CIHigh: d + q*se, PValue: 2 * z.Survival(math.Abs(d)/se)}
		}
		if estimable {
			w := float64(s.units()) / n
			ps += w * c.Absolute.Estimate
			psVar += w * w * c.Absolute.SE * c.Absolute.SE
		} else {
			postStrat = false
		}
		p = append(p, c.Absolute.PValue)
		pi = append(pi, e.Interaction.PValue)
		rep.Segments = append(rep.Segments, e)
	}
	adj, adjI := HolmAdjust(p), HolmAdjust(pi)
	if o.Correction == BenjaminiHochberg {
		adj, adjI = BHAdjust(p), BHAdjust(pi)
	}
	for k := range rep.Segments {
		rep.Segments[k].Adjusted = adj[k]
		rep.Segments[k].InteractionAdjusted = adjI[k]
		rep.Segments[k].Differs = adjI[k] < o.Alpha
	}
	var sw, swt float64
	K := 0
	for k, s := range rep.Segments {
		if ok[k] {
			w := 1 / (s.Absolute.SE * s.Absolute.SE)
			sw += w
			swt += w * s.Absolute.Estimate
			K++
		}
	}
	if K >= 2 {
		mean := swt / sw
		var q float64
		for k, s := range rep.Segments {
			if ok[k] {
				d := s.Absolute.Estimate - mean
				q += d * d / (s.Absolute.SE * s.Absolute.SE)
			}
		}
		h := &Heterogeneity{Q: q, DF: K - 1, Segments: K}
		h.PValue = distuv.ChiSquared{K: float64(K - 1)}.Survival(q)
		if q > 0 {
			h.I2 = math.Max(0, (q-float64(K-1))/q)
		}
		h.Heterogeneous = h.PValue < o.Alpha
		rep.Heterogeneity = h
	}
	if o.Covariate {
		cells := make([]PSCell, len(segs))
		for k, s := range segs {
			cells[k] = PSCell{Name: s.name, Control: s.ps[0], Treated: s.ps[1]}
		}
		cps, err := PostStratify(cells, true, o.Alpha, shift)
		if err != nil && experiment.KindOf(err) != experiment.InsufficientData {
			return nil, err
		}
		rep.CUPEDPostStratified = cps // nil when an arm has no variance
		rep.Covariate = o.CovariateName
	}
	if postStrat && psVar > 0 {
		se := math.Sqrt(psVar)
		q := z.Quantile(1 - o.Alpha/2)
		rep.PostStratified = &Effect{Estimate: ps, SE: se, CILow: ps - q*se, CIHigh: ps + q*se, PValue: 2 * z.Survival(math.Abs(ps)/se)}
	} else {
		rep.Flags = append(rep.Flags, FlagPostStratificationNotApplied)
	}
	return rep, nil
}

// MissingSegment is the segment of a unit without the attribute.
const MissingSegment = "(missing)"

// SegmentOf is the segment label of an attribute value as decoded from JSON: a
// string as it is, a number in its shortest form (3, 0.25), a boolean as true or
// false, and nil as MissingSegment.
func SegmentOf(v any) string {
	switch x := v.(type) {
	case nil:
		return MissingSegment
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	default:
		return fmt.Sprint(x)
	}
}
