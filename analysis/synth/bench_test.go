package synth

import (
	"fmt"
	"math"
	"math/rand/v2"
	"syscall"
	"testing"
)

// benchPanel is 200 markets × 365 days: a weekly cycle, a trend and two
// market-specific factors, the first market treated from day 335 with a 5%
// lift.
func benchPanel() Panel {
	const U, T = 200, 365
	rng := rand.New(rand.NewPCG(200, 365))
	p := Panel{}
	f1, f2 := make([]float64, T), make([]float64, T)
	for t := range T {
		p.Periods = append(p.Periods, fmt.Sprintf("d%03d", t))
		f1[t] = math.Sin(2*math.Pi*float64(t)/7) + 0.2*rng.NormFloat64()
		f2[t] = float64(t)/365 + 0.1*rng.NormFloat64()
	}
	for u := range U {
		p.Units = append(p.Units, fmt.Sprintf("m%03d", u))
		base, l1, l2 := 1000+200*rng.NormFloat64(), 50+10*rng.NormFloat64(), 100*rng.NormFloat64()
		y := make([]float64, T)
		for t := range T {
			y[t] = base + l1*f1[t] + l2*f2[t] + 10*rng.NormFloat64()
			if u == 0 && t >= 335 {
				y[t] *= 1.05
			}
		}
		p.Y = append(p.Y, y)
	}
	return p
}

// BenchmarkFit200x365 fits one test market from 199 donors over 335
// pre-period days, without inference: the simplex weights (scm), and the
// ridge-augmented weights with λ cross-validated over the 334 folds
// (augmented), the fit the one-second goal is about.
func BenchmarkFit200x365(b *testing.B) {
	p := benchPanel()
	for _, m := range []Method{SCM, Augmented} {
		b.Run(string(m), func(b *testing.B) {
			cpu0 := cpuSeconds()
			for range b.N {
				rep, err := Run(p, Options{Treated: []int{0}, Start: 335, Method: m})
				if err != nil {
					b.Fatal(err)
				}
				if l := rep.Average.Lift; math.Abs(l-0.05) > 0.02 {
					b.Fatalf("lift %g, planted 0.05", l)
				}
			}
			b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N), "cpu-s/op")
		})
	}
}

// BenchmarkInference200x365 is the same fit with the placebo test (199
// refits) and the conformal inference (the average and each of the 30 days,
// every p-value a refit over the panel).
func BenchmarkInference200x365(b *testing.B) {
	p := benchPanel()
	cpu0 := cpuSeconds()
	for range b.N {
		if _, err := Run(p, Options{Treated: []int{0}, Start: 335, Method: SCM, Placebo: true, Conformal: true}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N), "cpu-s/op")
}

// cpuSeconds is the process's user + system CPU time: on a shared machine it
// is a steadier measure of the work than the wall clock.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return math.NaN()
	}
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}
