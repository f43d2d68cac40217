package analysis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/liftlab/lift/experiment"
)

// quantileRows is the data of TestQuantileRunReference, built as in its snippet.
func quantileRows() (arms []string, values []float64) {
	for i := range 600 {
		arms, values = append(arms, "control"), append(values, math.Exp(float64((i*7919)%1009)/300))
	}
	for i := range 500 {
		arms, values = append(arms, "treatment"), append(values, 1.1*math.Exp(float64((i*104729)%1013)/290)+0.5)
	}
	return append(arms, "other"), append(values, 1e9) // a third arm, left out
}

// TestQuantileRunReference checks quantiles, Maritz–Jarrett standard errors
// and the interval of the difference against scipy 1.10 (Debian's python3):
//
//	import numpy as np, scipy.stats as st
//	from scipy.stats.mstats import mquantiles, mjci
//	a=np.array([np.exp(((i*7919)%1009)/300.0) for i in range(600)])
//	b=np.array([1.1*np.exp(((i*104729)%1013)/290.0)+0.5 for i in range(500)])
//	z=st.norm.ppf(0.975)
//	for p in [0.5,0.9,0.99]:
//	    qa=mquantiles(a,[p],alphap=0,betap=0)[0]; qb=mquantiles(b,[p],alphap=0,betap=0)[0]
//	    sa=mjci(a,[p])[0]; sb=mjci(b,[p])[0]
//	    d=qb-qa; se=np.sqrt(sa**2+sb**2); vr=sb**2/qa**2+sa**2*qb**2/qa**4
//	    print(p, qa, qb, sa, sb, d, se, d-z*se, d+z*se, 2*st.norm.sf(abs(d)/se), (qb-qa)/abs(qa), np.sqrt(vr))
//
// The control quantiles are also R's quantile(x, c(.5,.9,.99), type = 6):
// 5.3924584218664258, 20.7525402965684478, 28.1233507701493117.
func TestQuantileRunReference(t *testing.T) {
	want := [][12]float64{
		{0.5, 5.392458421866426, 6.657836259297572, 0.37015278940588037, 0.49516993318503727, 1.2653778374311466, 0.6182283964971427, 0.05367244607679855, 2.477083228785495, 0.04067963938390628, 0.2346569483595901, 0.12495868741877084},
		{0.9, 20.752540296568448, 25.826985142900476, 0.8574034488925169, 1.3553263851662791, 5.074444846332028, 1.6037612928676999, 1.9311304725119425, 8.217759220152114, 0.0015556875456014588, 0.24452162356100168, 0.08312089484163766},
		{0.99, 28.12335077014931, 35.32892325601108, 0.34880939853263393, 0.6738524394497741, 7.205572485861769, 0.7587786941243865, 5.718393573141637, 8.6927513985819, 2.175290782513328e-21, 0.2562131569866101, 0.02858086586014922},
	}
	arms, values := quantileRows()
	rep, err := QuantileRun(context.Background(), arms, values, QuantileOptions{Control: "control", Treatment: "treatment"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Quantiles) != 3 {
		t.Fatalf("%d quantiles, want the default 3", len(rep.Quantiles))
	}
	for k, w := range want {
		e := rep.Quantiles[k]
		got := [12]float64{e.Quantile, e.Control.Estimate, e.Treated.Estimate, e.Control.SE, e.Treated.SE, e.Absolute.Estimate, e.Absolute.SE,
			e.Absolute.CILow, e.Absolute.CIHigh, e.Absolute.PValue, e.Relative.Estimate, e.Relative.SE}
		names := []string{"p", "q_a", "q_b", "se_a", "se_b", "diff", "se", "ci_low", "ci_high", "p_value", "relative", "relative se"}
		for i := range got {
			// Relative 1e-9; the p-value of p99 (2e−21) to 1e-6 of itself.
			if math.Abs(got[i]-w[i]) > 1e-9*math.Max(1, math.Abs(w[i])) && math.Abs(got[i]-w[i]) > 1e-6*math.Abs(w[i]) {
				t.Errorf("p%g %s = %.15g, want %.15g", w[0]*100, names[i], got[i], w[i])
			}
		}
		if e.Control.N != 600 || e.Treated.N != 500 {
			t.Errorf("units %d/%d, want 600/500", e.Control.N, e.Treated.N)
		}
	}
}

// TestQuantileCoverage: under the null (both arms exponential(1), n = 400 each)
// the 95% interval of the p90 difference covers 0 in 95% of 1000 seeded
// replications; the binomial standard deviation is √(.95·.05/1000) = 0.0069
// and we allow 6 of them (a false failure is negligible), which also bounds
// how far the large-sample interval may be off at this n.
func TestQuantileCoverage(t *testing.T) {
	r := rand.New(rand.NewPCG(20, 90))
	const reps, n = 1000, 400
	arms := make([]string, 2*n)
	for i := range arms {
		arms[i] = []string{"control", "treatment"}[i%2]
	}
	values := make([]float64, 2*n)
	covered := 0
	for range reps {
		for i := range values {
			values[i] = r.ExpFloat64()
		}
		rep, err := QuantileRun(context.Background(), arms, values, QuantileOptions{Control: "control", Treatment: "treatment", Quantiles: []float64{0.9}})
		if err != nil {
			t.Fatal(err)
		}
		if a := rep.Quantiles[0].Absolute; a.CILow <= 0 && 0 <= a.CIHigh {
			covered++
		}
	}
	if c := float64(covered) / reps; math.Abs(c-0.95) > 6*0.0069 {
		t.Errorf("coverage %.3f, want 0.95 ± %.3f", c, 6*0.0069)
	}
}

func TestQuantileRunEdges(t *testing.T) {
	// Three units per arm: p50 has m = 2 (estimable), p99 has m = 3 = n (not).
	arms := []string{"control", "control", "control", "treatment", "treatment", "treatment"}
	rep, err := QuantileRun(context.Background(), arms, []float64{1, 2, 3, 2, 3, 4}, QuantileOptions{Control: "control", Treatment: "treatment", Quantiles: []float64{0.5, 0.99}})
	if err != nil {
		t.Fatal(err)
	}
	if f := rep.Quantiles[0].Flags; len(f) != 0 {
		t.Errorf("p50 flags %v, want none", f)
	}
	if e := rep.Quantiles[1]; len(e.Flags) != 1 || e.Flags[0] != FlagQuantileTooFew || e.Absolute.PValue != 1 {
		t.Errorf("p99 flags %v, p %g; want %s and p 1", e.Flags, e.Absolute.PValue, FlagQuantileTooFew)
	}
	for _, tc := range []struct {
		name  string
		o     QuantileOptions
		vals  []float64
		field string
		kind  experiment.Kind
	}{
		{"quantile 1", QuantileOptions{Control: "control", Treatment: "treatment", Quantiles: []float64{0.5, 1}}, nil, "quantiles[1]", experiment.Invalid},
		{"alpha", QuantileOptions{Control: "control", Treatment: "treatment", Alpha: -1}, nil, "alpha", experiment.Invalid},
		{"same arms", QuantileOptions{Control: "control", Treatment: "control"}, nil, "treatment", experiment.Invalid},
		{"nan", QuantileOptions{Control: "control", Treatment: "treatment"}, []float64{1, 2, math.NaN(), 2, 3, 4}, "value", experiment.Invalid},
		{"no arm", QuantileOptions{Control: "control", Treatment: "b"}, nil, "", experiment.InsufficientData},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := tc.vals
			if v == nil {
				v = []float64{1, 2, 3, 2, 3, 4}
			}
			_, err := QuantileRun(context.Background(), arms, v, tc.o)
			var e *experiment.Error
			if !errors.As(err, &e) || e.Kind != tc.kind || e.Field != tc.field {
				t.Fatalf("err = %v, want kind %s field %q", err, tc.kind, tc.field)
			}
		})
	}
}

// eventRows are the events of TestQuantileEventsReference, built by the same
// loops as the R snippet there: 120 units, unit u with 1 + 7u mod 5 events,
// event j's value (31u + 17j mod 97)/4 + u mod 6, plus 2 for even j in the
// treatment (units 60–119).
func eventRows() (arms, units []string, values []float64) {
	for u := range 120 {
		for j := range 1 + (u*7)%5 {
			y := float64((u*31+j*17)%97)/4 + float64(u%6)
			arm := "control"
			if u >= 60 {
				arm = "treatment"
				if j%2 == 0 {
					y += 2
				}
			}
			arms, units, values = append(arms, arm), append(units, strconv.Itoa(u)), append(values, y)
		}
	}
	return arms, units, values
}

// TestQuantileEventsReference: quantiles of events with Woodruff's interval,
// the events clustered by unit, against R's survey package (4.1.1):
//
//	library(survey)   # d: the rows of eventRows (unit, arm, y)
//	for (a in c("control", "treatment")) {
//	  des <- svydesign(ids = ~unit, data = d[d$arm == a, ])
//	  print(svyquantile(~y, des, c(0.5, 0.9, 0.25), qrule = "hf6",
//	                    interval.type = "mean", df = Inf, se = TRUE))
//	}
//
// each arm's quantile and standard error to 1e-12; the difference's SE is
// √(SE_a² + SE_b²).
func TestQuantileEventsReference(t *testing.T) {
	arms, units, values := eventRows()
	rep, err := QuantileRun(context.Background(), arms, values, QuantileOptions{Control: "control", Treatment: "treatment",
		Quantiles: []float64{0.5, 0.9, 0.25}, Clusters: units})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ qa, sea, qb, seb float64 }{ // R: quantile, se per arm
		{14.5, 0.75349533392349266, 15.874999999999998, 0.8970583613096681},
		{24.25, 0.63171127371315183, 25.474999999999998, 0.67604497084104409},
		{8.5625, 0.54452675104454284, 9.75, 0.82909686750256284},
	}
	if rep.Method != QuantileEventMethod || len(rep.Quantiles) != 3 {
		t.Fatalf("%+v", rep)
	}
	close := func(what string, got, w float64) {
		if math.Abs(got-w) > 1e-12*math.Max(1, math.Abs(w)) {
			t.Errorf("%s = %.17g, R %.17g", what, got, w)
		}
	}
	for i, w := range want {
		e := rep.Quantiles[i]
		close(fmt.Sprintf("p%g control", e.Quantile), e.Control.Estimate, w.qa)
		close(fmt.Sprintf("p%g control se", e.Quantile), e.Control.SE, w.sea)
		close(fmt.Sprintf("p%g treated", e.Quantile), e.Treated.Estimate, w.qb)
		close(fmt.Sprintf("p%g treated se", e.Quantile), e.Treated.SE, w.seb)
		close(fmt.Sprintf("p%g difference se", e.Quantile), e.Absolute.SE, math.Hypot(w.sea, w.seb))
		if e.Control.Units != 60 || e.Treated.Units != 60 || e.Control.N+e.Treated.N != len(values) {
			t.Errorf("p%g: units %d and %d, events %d and %d", e.Quantile, e.Control.Units, e.Treated.Units, e.Control.N, e.Treated.N)
		}
	}
	// The same values as units (no clusters): Maritz–Jarrett, another SE.
	plain, err := QuantileRun(context.Background(), arms, values, QuantileOptions{Control: "control", Treatment: "treatment", Quantiles: []float64{0.5}})
	if err != nil {
		t.Fatal(err)
	}
	if plain.Method != QuantileMethod || plain.Quantiles[0].Control.SE == rep.Quantiles[0].Control.SE {
		t.Errorf("without clusters: %+v", plain.Quantiles[0])
	}
}
