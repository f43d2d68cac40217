package privacy

import (
	"fmt"
	"math"

	"github.com/liftlab/lift/experiment"
)

// Segment is one segment's input (e.g. country = "FR"): its units per variant and
// metric statistics. Each unit belongs to exactly one segment.
type Segment struct {
	Name  string `json:"name"`
	Input Input  `json:"input"`
}

// SegmentRelease is a released segment.
type SegmentRelease struct {
	Name    string   `json:"name"`
	N       int64    `json:"n"` // the noised unit count that passed the threshold
	Release *Release `json:"release"`
}

// Segments is a segment breakdown: the kept segments and how many were suppressed.
type Segments struct {
	Threshold  float64          `json:"threshold"`  // noised unit count a segment needed
	Kept       []SegmentRelease `json:"kept"`       // in input order
	Suppressed int              `json:"suppressed"` // segments below the threshold (their names are not released)
	Epsilon    float64          `json:"epsilon"`
	Delta      float64          `json:"delta"`
}

// ReleaseSegments releases a breakdown by segment with DP partition selection:
// half of ε goes to a noised unit count per segment (L0 = 1, L∞ = 1), and a segment is
// kept only when that count reaches the threshold k = Noise.Threshold(1, 1, ε/2, δ_n,
// δ_t), the smallest k for which a segment holding a single unit is released with
// probability at most δ_t (Wilson et al. 2020, §4). Kept segments are released with
// NewRelease at ε/2; segments are disjoint, so by parallel composition the whole
// breakdown costs (ε, δ). Laplace noise puts all of δ on thresholding (δ_t = δ);
// Gaussian noise gives a third each to the selection noise, the threshold and the
// per-segment release. δ must be positive: without it no selection is private.
func ReleaseSegments(segs []Segment, p Params, opt Options) (*Segments, error) {
	const op = "privacy.ReleaseSegments"
	opt, err := opt.withDefaults()
	if err != nil {
		return nil, experiment.E(op, err)
	}
	if err := p.validate(opt.Mechanism); err != nil {
		return nil, experiment.E(op, err)
	}
	if p.Delta == 0 {
		return nil, experiment.E(op, experiment.Invalid, experiment.Field("delta"), experiment.Errorf("segment breakdowns need δ > 0 for partition selection"))
	}
	selEps := p.Epsilon / 2
	selDelta, thrDelta, relDelta := 0.0, p.Delta, 0.0
	if opt.Mechanism == Gaussian {
		selDelta, thrDelta, relDelta = p.Delta/3, p.Delta/3, p.Delta/3
	}
	thr, err := opt.Noise.Threshold(1, 1, selEps, selDelta, thrDelta)
	if err != nil {
		return nil, experiment.E(op, experiment.Internal, err)
	}
	out := &Segments{Threshold: thr, Epsilon: p.Epsilon, Delta: p.Delta}
	seen := map[string]bool{}
	for i := range segs {
		s := &segs[i]
		if seen[s.Name] {
			return nil, experiment.E(op, experiment.Invalid, experiment.Field(fmt.Sprintf("segments[%d].name", i)), experiment.Errorf("segment %q listed twice", s.Name))
		}
		seen[s.Name] = true
		if err := s.Input.validate(); err != nil {
			return nil, experiment.E(op, experiment.Field(fmt.Sprintf("segments[%d]", i)), err)
		}
	}
	for i := range segs {
		s := &segs[i]
		var total int64
		for _, u := range s.Input.Units {
			total += u.N
		}
		noisy, err := opt.Noise.AddNoiseFloat64(float64(total), 1, 1, selEps, selDelta)
		if err != nil {
			return nil, experiment.E(op, experiment.Internal, err)
		}
		if noisy < thr {
			out.Suppressed++
			continue
		}
		r, err := NewRelease(&s.Input, Params{Epsilon: p.Epsilon / 2, Delta: relDelta}, opt)
		if err != nil {
			return nil, experiment.E(op, experiment.Field(fmt.Sprintf("segments[%d]", i)), err)
		}
		out.Kept = append(out.Kept, SegmentRelease{Name: s.Name, N: int64(math.Round(noisy)), Release: r})
	}
	return out, nil
}
