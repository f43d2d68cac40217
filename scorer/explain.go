package scorer

import "math"

// Nearest returns, among the items of a user's history, the one whose vector is
// closest to item target by cosine similarity cos(y_a, y_b) = y_a·y_b / (‖y_a‖‖y_b‖),
// for explanations such as "because you viewed X". Ties go to the earlier history
// entry; items equal to target and zero vectors are skipped. ok is false when no
// history item qualifies. Indices must be in range (a caller bug otherwise).
func (m *Model) Nearest(target int32, history []int32) (best int32, similarity float32, ok bool) {
	t := m.Item(int(target))
	tn := norm(t)
	if tn == 0 {
		return 0, 0, false
	}
	bestSim := math.Inf(-1)
	for _, h := range history {
		if h == target {
			continue
		}
		y := m.Item(int(h))
		yn := norm(y)
		if yn == 0 {
			continue
		}
		var dot float64
		for j, v := range y {
			dot += float64(v) * float64(t[j])
		}
		if s := dot / (tn * yn); s > bestSim {
			bestSim, best, ok = s, h, true
		}
	}
	return best, float32(bestSim), ok
}

func norm(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}
