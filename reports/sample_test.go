package reports

import (
	"errors"

	"github.com/liftlab/lift/experiment"
	"math"
	"time"
)

// sampleCharts returns one chart of each kind over small synthetic inputs (smooth
// deterministic shapes, not estimates of anything), for rendering tests.
func sampleCharts(pr Privacy) []Chart {
	day := func(i int) time.Time { return time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i) }
	var cum, inc []TimeEffect
	for i := range 21 {
		w := 4 / math.Sqrt(float64(i+1))
		cum = append(cum, TimeEffect{Time: day(i), Interval: Interval{Estimate: 2.5 + 0.3*math.Sin(float64(i)/3), Low: 2.5 - w, High: 2.5 + w}})
		inc = append(inc, TimeEffect{Time: day(i), Interval: Interval{Estimate: 0.8 + 0.05*float64(i), Low: 0.8 + 0.05*float64(i) - w/4, High: 0.8 + 0.05*float64(i) + w/4}})
	}
	var tr, ct []TimeValue
	for i := range 12 {
		base := 10 + 0.4*float64(i)
		t := base + 1
		if i >= 6 {
			t += 2
		}
		tr = append(tr, TimeValue{Time: day(7 * i), Value: t})
		ct = append(ct, TimeValue{Time: day(7 * i), Value: base})
	}
	var ev []PeriodEffect
	for k := -5; k <= 6; k++ {
		if k == -1 {
			ev = append(ev, PeriodEffect{Period: k})
			continue
		}
		e := 0.0
		if k >= 0 {
			e = 2 * (1 - math.Exp(-float64(k+1)/2))
		}
		ev = append(ev, PeriodEffect{Period: k, Interval: Interval{Estimate: e, Low: e - 0.6, High: e + 0.6}})
	}
	curve := func(name string, a float64) Curve {
		var pts []CurvePoint
		for i := 0; i <= 20; i++ {
			f := float64(i) / 20
			pts = append(pts, CurvePoint{Fraction: f, Value: 300 * (f + a*f*(1-f))})
		}
		return Curve{Name: name, Points: pts}
	}
	upl := func(name string, a float64) Curve {
		var pts []CurvePoint
		for i := 1; i <= 20; i++ {
			f := float64(i) / 20
			pts = append(pts, CurvePoint{Fraction: f, Value: 0.02 + a*(1-f)})
		}
		return Curve{Name: name, Points: pts}
	}
	return []Chart{
		&Forest{Unit: "relative lift, %", Level: 0.95, Privacy: pr, Effects: []Effect{
			{Label: "revenue: treatment", Interval: Interval{Estimate: 2.4, Low: 0.9, High: 3.9}},
			{Label: "conversion: treatment", Interval: Interval{Estimate: 1.1, Low: -0.4, High: 2.6}},
			{Label: "unsubscribes: treatment", Interval: Interval{Estimate: -0.3, Low: -2.1, High: 1.5}},
		}},
		&Cumulative{Metric: "revenue", Unit: "relative lift, %", Level: 0.95, Points: cum, Privacy: pr},
		&Exposures{SRMPValue: 0.412, Privacy: pr, Counts: []VariantCount{{"control", 500312, 500000}, {"treatment", 499688, 500000}}},
		&Incrementality{Holdout: "global", Metric: "revenue", Unit: "EUR per unit", Level: 0.95, Points: inc, Privacy: pr},
		&DiDTrends{Metric: "orders", Unit: "per store-week", Treated: tr, Control: ct, Intervention: day(41), Privacy: pr},
		&EventStudy{Metric: "orders", Unit: "per store-week", Level: 0.95, Coefficients: ev, Privacy: pr},
		&Qini{Unit: "conversions", Curves: []Curve{curve("T-learner", 0.8), curve("X-learner", 1.1)}, Privacy: pr},
		&UpliftCurve{Unit: "conversion rate, points", Curves: []Curve{upl("T-learner", 0.06), upl("X-learner", 0.09)}, Privacy: pr},
	}
}

func nan() float64 { return math.NaN() }

func asErr(err error, target **experiment.Error) bool { return errors.As(err, target) }
