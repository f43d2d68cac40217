package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"

	"github.com/liftlab/lift/analysis"
	"github.com/liftlab/lift/experiment"
)

const segmentsDescription = `Break an experiment's effect down by a unit attribute (country, device, plan).

One row per unit: its arm (--treatment), metric value (--outcome) and segment
(--segment; an empty value is the segment "(missing)"). Rows of other arms are
left out. Each segment gets the Welch difference treated − control, its p-value
adjusted across segments (--correction, Holm by default), and a test of its
effect against the effect in all other segments ("differs"); Cochran's Q tests
that every segment has the same effect. The largest --max-segments − 1 segments
are shown and the rest merged into "(other)". "post_stratified" is the overall
effect post-stratified on the segments (Miratrix, Sekhon & Yu 2013): a valid
variance reduction only when the attribute was fixed before exposure. With
--covariate COL (a pre-exposure value, usually the metric before the experiment)
"cuped_post_stratified" adds GrowthBook's CUPEDps: each segment's effect
regression-adjusted on the covariate, then post-stratified.
POST /v1/analyses/segments runs the same pipeline on an experiment in the store.`

type segmentsFlags struct {
	data, treatment, outcome, segment, control, treated, typ, correction, format, covariate string
	alpha                                                                                   float64
	maxSegments                                                                             int
}

const segmentsOp = "segments"

func runSegments(ctx context.Context, e *env, args []string) error {
	var f segmentsFlags
	fs := e.flags("segments", "--data FILE --treatment COL --outcome COL --segment COL [flags]", segmentsDescription)
	fs.StringVar(&f.data, "data", "", "CSV file, one row per unit (required)")
	fs.StringVar(&f.treatment, "treatment", "", "column naming each unit's arm (required)")
	fs.StringVar(&f.outcome, "outcome", "", "numeric metric column (required)")
	fs.StringVar(&f.segment, "segment", "", "column of the segment (required)")
	fs.StringVar(&f.control, "control", "", `control arm value (default: "control", else "0" when the arms are 0 and 1)`)
	fs.StringVar(&f.treated, "treated", "", "treated arm value (default: the only other value)")
	fs.StringVar(&f.typ, "type", "mean", "metric type: mean or proportion")
	fs.StringVar(&f.correction, "correction", "holm", "adjustment across segments: holm or bh")
	fs.Float64Var(&f.alpha, "alpha", 0.05, "significance level; intervals have coverage 1-alpha")
	fs.IntVar(&f.maxSegments, "max-segments", analysis.DefaultMaxSegments, "most segments shown; the smallest others are merged")
	fs.StringVar(&f.covariate, "covariate", "", "numeric pre-exposure covariate column: adds CUPEDps (cuped_post_stratified)")
	fs.StringVar(&f.format, "format", "json", "output format: json or text")
	if err := e.parse(fs, args); err != nil {
		return err
	}
	rep, err := segmentsFile(ctx, f)
	if err != nil {
		return err
	}
	if f.format == "text" {
		return writeSegmentsText(e.stdout, rep)
	}
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

func segmentsInvalid(flag, format string, args ...any) error {
	return experiment.E(segmentsOp, experiment.Invalid, experiment.Field(flag), experiment.Errorf(format, args...))
}

// segmentFlag maps a field of analysis.SegmentOptions to its flag.
var segmentFlag = map[string]string{"type": "--type", "alpha": "--alpha", "correction": "--correction", "max_segments": "--max-segments", "treatment": "--treated", "value": "--outcome", "covariate": "--covariate"}

func segmentsFile(ctx context.Context, f segmentsFlags) (*analysis.SegmentReport, error) {
	for _, req := range []struct{ flag, v string }{{"--data", f.data}, {"--treatment", f.treatment}, {"--outcome", f.outcome}, {"--segment", f.segment}} {
		if req.v == "" {
			return nil, segmentsInvalid(req.flag, "is required")
		}
	}
	if !(f.alpha > 0 && f.alpha < 1) {
		return nil, segmentsInvalid("--alpha", "must be in (0, 1), got %g", f.alpha)
	}
	if f.format != "json" && f.format != "text" {
		return nil, segmentsInvalid("--format", "must be json or text, got %q", f.format)
	}
	t, err := readTableFile(ctx, segmentsOp, f.data)
	if err != nil {
		return nil, err
	}
	arms, err := t.strings(segmentsOp, "--treatment", f.treatment)
	if err != nil {
		return nil, err
	}
	control, treated, err := upliftArms(arms, f.control, f.treated)
	if err != nil {
		return nil, err
	}
	y, err := t.floats(segmentsOp, "--outcome", f.outcome)
	if err != nil {
		return nil, err
	}
	seg, err := t.strings(segmentsOp, "--segment", f.segment)
	if err != nil {
		return nil, err
	}
	var x []float64
	if f.covariate != "" {
		if x, err = t.floats(segmentsOp, "--covariate", f.covariate); err != nil {
			return nil, err
		}
	}
	var rows []analysis.SegmentRow
	for i, a := range arms {
		if a != control && a != treated {
			continue
		}
		if math.IsNaN(y[i]) {
			return nil, segmentsInvalid("--outcome", "%s line %d, column %q: missing value", f.data, t.line(i), f.outcome)
		}
		s := seg[i]
		if missing(s) {
			s = analysis.MissingSegment
		}
		r := analysis.SegmentRow{Segment: s, Arm: a, Value: y[i]}
		if x != nil {
			if math.IsNaN(x[i]) {
				return nil, segmentsInvalid("--covariate", "%s line %d, column %q: missing value", f.data, t.line(i), f.covariate)
			}
			r.Covariate = x[i]
		}
		rows = append(rows, r)
	}
	rep, err := analysis.SegmentRun(ctx, rows, analysis.SegmentOptions{
		Metric: f.outcome, Attribute: f.segment, Control: control, Treatment: treated,
		Type: analysis.Type(f.typ), Alpha: f.alpha, Correction: analysis.Correction(f.correction), MaxSegments: f.maxSegments,
		Covariate: x != nil, CovariateName: f.covariate,
	})
	if err != nil {
		var e *experiment.Error
		if experiment.KindOf(err) == experiment.Invalid && errors.As(err, &e) && segmentFlag[e.Field] != "" {
			return nil, segmentsInvalid(segmentFlag[e.Field], "%s", strings.TrimPrefix(e.Message(), e.Field+": "))
		}
		return nil, pipelineError(ctx, segmentsOp, err)
	}
	return rep, nil
}

func writeSegmentsText(w io.Writer, r *analysis.SegmentReport) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Segments of %s by %s: %q vs %q (p-values adjusted by %s across segments)\n\n", r.Metric, r.Attribute, r.Treatment, r.Control, r.Correction)
	o := r.Overall.Absolute
	fmt.Fprintf(&b, "overall           %.6g   CI [%.6g, %.6g]   p %.4g\n", o.Estimate, o.CILow, o.CIHigh, o.PValue)
	if ps := r.PostStratified; ps != nil {
		fmt.Fprintf(&b, "post-stratified   %.6g   CI [%.6g, %.6g]   p %.4g\n", ps.Estimate, ps.CILow, ps.CIHigh, ps.PValue)
	}
	if c := r.CUPEDPostStratified; c != nil {
		a := c.Absolute
		fmt.Fprintf(&b, "CUPEDps (%s)   %.6g   CI [%.6g, %.6g]   p %.4g\n", r.Covariate, a.Estimate, a.CILow, a.CIHigh, a.PValue)
	}
	if h := r.Heterogeneity; h != nil {
		fmt.Fprintf(&b, "heterogeneity     Q %.4g on %d dof   p %.4g   I² %.2f\n", h.Q, h.DF, h.PValue, h.I2)
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "segment\tcontrol\ttreated\teffect\tCI\tp\tadjusted p\tvs rest p\tdiffers\t\n")
	for _, s := range r.Segments {
		a := s.Absolute
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.4g\t[%.4g, %.4g]\t%.4g\t%.4g\t%.4g\t%v\t\n", s.Segment, s.Control, s.Treated, a.Estimate, a.CILow, a.CIHigh, a.PValue, s.Adjusted, s.InteractionAdjusted, s.Differs)
	}
	tw.Flush()
	if r.Merged > 0 {
		fmt.Fprintf(&b, "\n%d smallest segments merged into %q\n", r.Merged, analysis.OtherSegment)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
