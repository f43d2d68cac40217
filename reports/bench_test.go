package reports

import (
	"math/rand/v2"
	"testing"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/privacy"
)

// BenchmarkFullReport measures a full private report of an experiment with 1M
// units once its per-unit values are computed: clamping and summing 3 metrics over
// the 1M units, the DP release (Laplace), and writing the report folder (8 charts
// × PNG, SVG and PDF, HTML, Markdown, JSON, CSV). Goal: under 2 s.
//
//	go test ./reports -run '^$' -bench FullReport -benchtime 5x
func BenchmarkFullReport(b *testing.B) {
	const units = 1_000_000
	rng := rand.New(rand.NewPCG(1, 2))
	arms := []string{"control", "treatment"}
	type metric struct {
		name   string
		bounds experiment.Bounds
		vals   [2][]float64
	}
	ms := []*metric{
		{name: "revenue", bounds: experiment.Bounds{Lower: 0, Upper: 200}},
		{name: "orders", bounds: experiment.Bounds{Lower: 0, Upper: 10}},
		{name: "converted", bounds: experiment.Bounds{Lower: 0, Upper: 1}},
	}
	for i := range units {
		a := i % 2
		orders := float64(rng.IntN(3))
		for _, m := range ms {
			var v float64
			switch m.name {
			case "revenue":
				v = orders * rng.ExpFloat64() * (20 + float64(a))
			case "orders":
				v = orders
			default:
				v = min(orders, 1)
			}
			m.vals[a] = append(m.vals[a], v)
		}
	}
	dir := b.TempDir()
	b.ResetTimer()
	for range b.N {
		in := &privacy.Input{Control: "control", Units: []privacy.Count{{Variant: "control", N: units / 2}, {Variant: "treatment", N: units / 2}}}
		for _, m := range ms {
			st := privacy.MetricStats{Metric: m.name, Bounds: m.bounds}
			for a, name := range arms {
				st.Variants = append(st.Variants, privacy.Summarize(name, m.vals[a], m.bounds))
			}
			in.Metrics = append(in.Metrics, st)
		}
		rel, err := privacy.NewRelease(in, privacy.Params{Epsilon: 1}, privacy.DefaultOptions())
		if err != nil {
			b.Fatal(err)
		}
		pr := Privacy{Private: true, Epsilon: rel.Epsilon}
		r := &Report{Experiment: "bench", Name: "Benchmark", Alpha: 0.05, Privacy: pr, Charts: sampleCharts(pr)}
		forest := r.Charts[0].(*Forest)
		forest.Effects = nil
		for _, m := range rel.Metrics {
			c := m.Comparisons[0]
			r.Results = append(r.Results, Result{Metric: m.Metric, Variant: c.Variant, Control: "control", N: m.Variants[1].N, Mean: m.Variants[1].Mean,
				ControlN: m.Variants[0].N, ControlMean: m.Variants[0].Mean, Absolute: Estimate(c.Absolute)})
			forest.Effects = append(forest.Effects, Effect{Label: m.Metric, Interval: Interval{Estimate: 100 * c.Relative.Estimate, Low: 100 * c.Relative.CILow, High: 100 * c.Relative.CIHigh}})
		}
		if _, err := r.WriteDir(dir, RenderOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRender renders the 8 sample charts in one format per sub-benchmark.
func BenchmarkRender(b *testing.B) {
	charts := sampleCharts(Privacy{Private: true, Epsilon: 1})
	for _, f := range Formats() {
		b.Run(string(f), func(b *testing.B) {
			for range b.N {
				for _, c := range charts {
					if _, err := Bytes(c, f, RenderOptions{}); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
