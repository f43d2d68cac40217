package analysis

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/liftlab/lift/experiment"
)

// segmentRows is the data of TestSegmentRunReference, built by the same loop
// as the Python snippet there.
func segmentRows(offset float64) []SegmentRow {
	effect := map[string]float64{"de": 0, "fr": 3, "us": 1, "jp": 5}
	var rows []SegmentRow
	for i := range 300 {
		seg := []string{"de", "fr", "us"}[i%3]
		if i%10 == 0 {
			seg = "jp"
		}
		arm := "control"
		if (i/3)%2 == 1 {
			arm = "treatment"
		}
		v := float64((i*7919)%101)/10 + effect[seg]
		if arm == "treatment" {
			v += 0.5
			if seg == "us" {
				v += 2.5
			}
		}
		rows = append(rows, SegmentRow{Segment: seg, Arm: arm, Value: v + offset})
	}
	// A third arm, left out.
	rows = append(rows, SegmentRow{Segment: "de", Arm: "other", Value: 1e6})
	return rows
}

// TestSegmentRunReference checks every number of a breakdown against scipy and
// statsmodels on the same rows (Debian's python3: scipy 1.10, statsmodels 0.13):
//
//	import numpy as np, pandas as pd, statsmodels.formula.api as smf, scipy.stats as st
//	from statsmodels.stats.multitest import multipletests
//	rows=[]
//	for i in range(300):
//	    seg=["de","fr","us"][i%3] if i%10 else "jp"
//	    arm="control" if (i//3)%2==0 else "treatment"
//	    v=((i*7919)%101)/10.0+{"de":0,"fr":3,"us":1,"jp":5}[seg]+(2.5 if arm=="treatment" and seg=="us" else 0)+(0.5 if arm=="treatment" else 0)
//	    rows.append((seg,arm,v))
//	d=pd.DataFrame(rows,columns=["seg","arm","y"]); d["t"]=(d.arm=="treatment").astype(float)
//	segs=sorted(d.seg.unique()); est=[];se=[];p=[];n=[]
//	for s in segs:
//	    a=d[(d.seg==s)&(d.t==0)].y; b=d[(d.seg==s)&(d.t==1)].y
//	    r=st.ttest_ind(b,a,equal_var=False); e=b.mean()-a.mean(); sse=np.sqrt(a.var()/len(a)+b.var()/len(b))
//	    est.append(e);se.append(sse);p.append(r.pvalue);n.append(len(a)+len(b))
//	print(multipletests(p,method="holm")[1], multipletests(p,method="fdr_bh")[1])
//	est=np.array(est);se=np.array(se);w=1/se**2;tb=(w*est).sum()/w.sum();Q=(w*(est-tb)**2).sum()
//	print(Q, st.chi2.sf(Q,len(segs)-1))
//	for s in segs:   # the rest of the units
//	    a=d[(d.seg!=s)&(d.t==0)].y; b=d[(d.seg!=s)&(d.t==1)].y
//	    er=b.mean()-a.mean(); ser=np.sqrt(a.var()/len(a)+b.var()/len(b))
//	    k=segs.index(s); z=(est[k]-er)/np.sqrt(se[k]**2+ser**2); print(er, ser, z, 2*st.norm.sf(abs(z)))
//	for s in segs: d["D_"+s]=(d.seg==s).astype(float)-(d.seg==s).mean()
//	m=smf.ols("y ~ t + "+" + ".join("D_"+s+" + t:D_"+s for s in segs[1:]),d).fit(cov_type="HC2")
//	print(m.params["t"], m.bse["t"], m.pvalues["t"])   # Lin's regression = post-stratification
//
// The offset 1e9 checks that the shifted sums keep every digit asked for.
func TestSegmentRunReference(t *testing.T) {
	type seg struct {
		est, se, p, holm, bh, rest, restSE, iz, ip float64
		nc, nt                                     int64
	}
	want := map[string]seg{
		"de": {0.2474999999999996, 0.6265316945579962, 0.6938347394195991, 1, 0.6938347394195991, 1.282636363636363, 0.41847482916393636, -1.3738907991318516, 0.1694755864783819, 40, 50},
		"fr": {0.5679999999999996, 0.6304726923533203, 0.37026043262975894, 1, 0.50074032139417, 0.9989090909090903, 0.46256394260593764, -0.5510629317596732, 0.5815905349482189, 50, 40},
		"jp": {1.0050000000000008, 1.1048586874791932, 0.37555524104562754, 1, 0.50074032139417, 0.940714285714285, 0.3963852484157016, 0.05476663120670741, 0.9563243849263019, 20, 10},
		"us": {2.5630000000000006, 0.6318416011948906, 0.0001116046139952622, 0.0004464184559810488, 0.0004464184559810488, -0.025454545454545396, 0.46467917996941605, 3.3002727605926867, 0.0009659090097185116, 40, 50},
	}
	const (
		q, qp    = 7.931446356311373, 0.04744995439085783 // Cochran's Q, chi2.sf(Q, 3)
		ps, psSE = 1.11405, 0.34531242406122              // OLS HC2: 1.114050000000004, 0.34531242406122037
	)
	for _, tc := range []struct {
		name   string
		offset float64
		corr   Correction
		tol    float64
	}{
		{"holm", 0, Holm, 1e-9},
		{"bh", 0, BenjaminiHochberg, 1e-9},
		{"offset 1e9", 1e9, Holm, 1e-6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := SegmentRun(context.Background(), segmentRows(tc.offset), SegmentOptions{Control: "control", Treatment: "treatment", Correction: tc.corr})
			if err != nil {
				t.Fatal(err)
			}
			close := func(what string, got, want float64) {
				t.Helper()
				if math.Abs(got-want) > tc.tol*math.Max(1, math.Abs(want)) {
					t.Errorf("%s = %.12g, want %.12g", what, got, want)
				}
			}
			if len(rep.Segments) != 4 {
				t.Fatalf("%d segments, want 4", len(rep.Segments))
			}
			// Largest first, ties by name: de, fr, us (90 units each), jp (30).
			for k, name := range []string{"de", "fr", "us", "jp"} {
				s := rep.Segments[k]
				if s.Segment != name {
					t.Fatalf("segment %d is %q, want %q", k, s.Segment, name)
				}
				w := want[name]
				if s.Control != w.nc || s.Treated != w.nt {
					t.Errorf("%s: units %d/%d, want %d/%d", name, s.Control, s.Treated, w.nc, w.nt)
				}
				close(name+" estimate", s.Absolute.Estimate, w.est)
				close(name+" se", s.Absolute.SE, w.se)
				close(name+" p", s.Absolute.PValue, w.p)
				adj := w.holm
				if tc.corr == BenjaminiHochberg {
					adj = w.bh
				}
				close(name+" adjusted p", s.Adjusted, adj)
				close(name+" rest", s.Rest.Estimate, w.rest)
				close(name+" rest se", s.Rest.SE, w.restSE)
				close(name+" interaction z", s.Interaction.Estimate/s.Interaction.SE, w.iz)
				close(name+" interaction p", s.Interaction.PValue, w.ip)
				if differs := name == "us"; s.Differs != differs {
					t.Errorf("%s: differs = %v, want %v (interaction p %g, adjusted %g)", name, s.Differs, differs, s.Interaction.PValue, s.InteractionAdjusted)
				}
			}
			h := rep.Heterogeneity
			if h == nil || h.DF != 3 || !h.Heterogeneous {
				t.Fatalf("heterogeneity = %+v, want Q on 3 dof, significant", h)
			}
			close("Q", h.Q, q)
			close("Q p", h.PValue, qp)
			if rep.PostStratified == nil {
				t.Fatalf("no post-stratified effect (flags %v)", rep.Flags)
			}
			close("post-stratified", rep.PostStratified.Estimate, ps)
			close("post-stratified se", rep.PostStratified.SE, psSE)
		})
	}
}

// TestSegmentRunCap checks the cap: the largest MaxSegments−1 segments are kept
// and the others merged, with their units summed.
func TestSegmentRunCap(t *testing.T) {
	rep, err := SegmentRun(context.Background(), segmentRows(0), SegmentOptions{Control: "control", Treatment: "treatment", MaxSegments: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Segments) != 2 || rep.Merged != 3 {
		t.Fatalf("%d segments, %d merged; want 2 and 3", len(rep.Segments), rep.Merged)
	}
	o := rep.Segments[1]
	// fr + us + jp: 50+40+20 control, 40+50+10 treated (counted in TestSegmentRunReference).
	if o.Segment != OtherSegment || o.Control != 110 || o.Treated != 100 {
		t.Fatalf("merged segment = %q %d/%d, want %q 110/100", o.Segment, o.Control, o.Treated, OtherSegment)
	}
	// Its effect is the rest of "de", from the same reference (scipy, see above).
	if math.Abs(o.Absolute.Estimate-1.282636363636363) > 1e-9 {
		t.Errorf("merged estimate %.12g, want 1.282636363636363", o.Absolute.Estimate)
	}
}

// TestSegmentRunSmall: a segment with one unit in an arm is flagged and keeps
// post-stratification out, without failing the breakdown.
func TestSegmentRunSmall(t *testing.T) {
	rows := append(segmentRows(0), SegmentRow{Segment: "tiny", Arm: "control", Value: 3})
	rep, err := SegmentRun(context.Background(), rows, SegmentOptions{Control: "control", Treatment: "treatment"})
	if err != nil {
		t.Fatal(err)
	}
	last := rep.Segments[len(rep.Segments)-1]
	if last.Segment != "tiny" || len(last.Flags) == 0 {
		t.Fatalf("last segment %q flags %v, want tiny, flagged", last.Segment, last.Flags)
	}
	if rep.PostStratified != nil || rep.Heterogeneity.Segments != 4 {
		t.Errorf("post-stratified %v, heterogeneity over %d segments; want none and 4", rep.PostStratified, rep.Heterogeneity.Segments)
	}
}

func TestSegmentRunInvalid(t *testing.T) {
	good := SegmentOptions{Control: "control", Treatment: "treatment"}
	for _, tc := range []struct {
		name  string
		rows  []SegmentRow
		edit  func(*SegmentOptions)
		field string
		kind  experiment.Kind
	}{
		{"same arms", segmentRows(0), func(o *SegmentOptions) { o.Treatment = "control" }, "treatment", experiment.Invalid},
		{"alpha", segmentRows(0), func(o *SegmentOptions) { o.Alpha = 1.5 }, "alpha", experiment.Invalid},
		{"cap", segmentRows(0), func(o *SegmentOptions) { o.MaxSegments = 1 }, "max_segments", experiment.Invalid},
		{"correction", segmentRows(0), func(o *SegmentOptions) { o.Correction = "bonferroni" }, "correction", experiment.Invalid},
		{"type", segmentRows(0), func(o *SegmentOptions) { o.Type = Ratio }, "type", experiment.Invalid},
		{"nan", []SegmentRow{{Segment: "a", Arm: "control", Value: math.NaN()}}, func(*SegmentOptions) {}, "value", experiment.Invalid},
		{"nan covariate", []SegmentRow{{Segment: "a", Arm: "control", Value: 1, Covariate: math.Inf(1)}}, func(o *SegmentOptions) { o.Covariate = true }, "covariate", experiment.Invalid},
		{"empty arm", []SegmentRow{{Segment: "a", Arm: "control", Value: 1}}, func(*SegmentOptions) {}, "", experiment.InsufficientData},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := good
			tc.edit(&o)
			_, err := SegmentRun(context.Background(), tc.rows, o)
			var e *experiment.Error
			if !errors.As(err, &e) || e.Kind != tc.kind || string(e.Field) != tc.field {
				t.Fatalf("err = %v, want kind %s field %q", err, tc.kind, tc.field)
			}
		})
	}
}

// TestSegmentRunCUPEDps: with a covariate, the report's cuped_post_stratified
// is PostStratify (checked against GrowthBook's vectors in
// TestPostStratifyGBStats) over the segments' sums, recounted here from the
// rows; and rows offset by 1e9 (metric) and −5e8 (covariate) give the same
// absolute effect (the sums are over values shifted by their means).
func TestSegmentRunCUPEDps(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	var rows []SegmentRow
	for i := range 3000 {
		seg := []string{"us", "de", "fr", "jp"}[i%4]
		x := rng.ExpFloat64() * 10
		arm := "control"
		y := 2 + 0.6*x + float64(i%4) + rng.NormFloat64()*3
		if rng.IntN(2) == 1 {
			arm = "treatment"
			y += 0.4
		}
		rows = append(rows, SegmentRow{Segment: seg, Arm: arm, Value: y, Covariate: x})
	}
	o := SegmentOptions{Control: "control", Treatment: "treatment", Covariate: true, CovariateName: "x_pre"}
	rep, err := SegmentRun(context.Background(), rows, o)
	if err != nil {
		t.Fatal(err)
	}
	got := rep.CUPEDPostStratified
	if got == nil || rep.Covariate != "x_pre" || !got.CUPED || got.Cells != 4 || got.Adjusted != 4 {
		t.Fatalf("cuped_post_stratified %+v, covariate %q", got, rep.Covariate)
	}
	by := map[string]*PSCell{}
	var cells []PSCell
	for _, s := range []string{"us", "de", "fr", "jp"} {
		cells = append(cells, PSCell{Name: s})
	}
	for i := range cells {
		by[cells[i].Name] = &cells[i]
	}
	for _, r := range rows {
		a := &by[r.Segment].Control
		if r.Arm == "treatment" {
			a = &by[r.Segment].Treated
		}
		a.add(PSArm{N: 1, Y: r.Value, YY: r.Value * r.Value, X: r.Covariate, XX: r.Covariate * r.Covariate, XY: r.Covariate * r.Value})
	}
	want, err := PostStratify(cells, true, 0.05, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range [][2]float64{{got.Absolute.Estimate, want.Absolute.Estimate}, {got.Absolute.SE, want.Absolute.SE},
		{got.Relative.Estimate, want.Relative.Estimate}, {got.Relative.SE, want.Relative.SE}} {
		if math.Abs(c[0]-c[1]) > 1e-9*math.Abs(c[1]) {
			t.Errorf("SegmentRun %v, PostStratify over the sums %v", c[0], c[1])
		}
	}
	// The covariate predicts y: CUPEDps is narrower than plain post-stratification.
	if got.Absolute.SE >= rep.PostStratified.SE {
		t.Errorf("CUPEDps SE %v not below the post-stratified %v", got.Absolute.SE, rep.PostStratified.SE)
	}
	far := make([]SegmentRow, len(rows))
	for i, r := range rows {
		r.Value += 1e9
		r.Covariate -= 5e8
		far[i] = r
	}
	repFar, err := SegmentRun(context.Background(), far, o)
	if err != nil {
		t.Fatal(err)
	}
	f := repFar.CUPEDPostStratified.Absolute
	if math.Abs(f.Estimate-got.Absolute.Estimate) > 1e-6*math.Abs(got.Absolute.Estimate) || math.Abs(f.SE-got.Absolute.SE) > 1e-6*got.Absolute.SE {
		t.Errorf("offset rows: %+v, want %+v", f, got.Absolute)
	}
	// Without the option there is none.
	o.Covariate = false
	if rep, err := SegmentRun(context.Background(), rows, o); err != nil || rep.CUPEDPostStratified != nil {
		t.Errorf("without a covariate: %v, %+v", err, rep.CUPEDPostStratified)
	}
}
