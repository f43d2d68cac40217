package scorer

import "testing"

func oldDot(q, y []float32) float32 {
	y = y[:len(q)]
	var l [8]float32
	j := 0
	for ; j+8 <= len(q); j += 8 {
		l[0] += float32(q[j] * y[j])
		l[1] += float32(q[j+1] * y[j+1])
		l[2] += float32(q[j+2] * y[j+2])
		l[3] += float32(q[j+3] * y[j+3])
		l[4] += float32(q[j+4] * y[j+4])
		l[5] += float32(q[j+5] * y[j+5])
		l[6] += float32(q[j+6] * y[j+6])
		l[7] += float32(q[j+7] * y[j+7])
	}
	return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]))
}

func BenchmarkZZ(b *testing.B) {
	const nb, d = 2048, 64
	items := make([]float32, nb*d)
	q := make([]float32, d)
	for i := range items {
		items[i] = float32(i%13) * 0.1
	}
	for i := range q {
		q[i] = float32(i%7) * 0.2
	}
	out := make([]float32, nb)
	for _, tc := range []struct {
		name string
		f    func(q, y []float32) float32
	}{{"old", oldDot}, {"fma", dotLanes}} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				for i := range nb {
					out[i] = tc.f(q, items[i*d:(i+1)*d])
				}
			}
			b.ReportMetric(float64(2*nb*d)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
