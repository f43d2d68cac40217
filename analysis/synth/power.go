package synth

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
)

// PowerOptions configure MarketSelection.
type PowerOptions struct {
	// Sizes are the numbers of test markets to try; Durations the lengths of
	// the test (post-periods).
	Sizes, Durations []int
	// Effects are the relative lifts simulated, ascending (default 0.01,
	// 0.02, …, 0.30): the treated markets' outcomes in the test window are
	// multiplied by 1 + effect.
	Effects []float64
	// Candidates is the number of candidate test sets drawn per size
	// (default 20); every set holds Include and none of Exclude.
	Candidates       int
	Include, Exclude []int
	// Lookback is the number of simulated tests per candidate and duration,
	// ending 0, 1, …, Lookback − 1 periods before the panel's end (GeoLift's
	// lookback_window; default 1). Power is the share of them that detect
	// the effect.
	Lookback  int
	Alpha     float64 // test level (0.1 when zero, GeoLift's default)
	Power     float64 // target power (0.8 when zero)
	Method    Method
	Intercept bool
	Rand      *rand.Rand // draws the candidate sets (required)
}

// PowerPoint is the simulated power at one effect size.
type PowerPoint struct {
	Effect float64 `json:"effect"`
	Power  float64 `json:"power"`
}

// Candidate is one test set and duration with its simulated power.
type Candidate struct {
	Rank     int          `json:"rank"`
	Markets  []string     `json:"markets"`
	Duration int          `json:"duration"`
	MDE      *float64     `json:"mde" doc:"smallest simulated lift detected with the target power; null when none is"`
	Curve    []PowerPoint `json:"power_curve"`
	// ScaledRMSPE is the pre-period RMSPE of the test markets' average over
	// its pre-period mean (the fit of the whole history before the last
	// test window): the tie-breaker of the ranking.
	ScaledRMSPE float64 `json:"scaled_pre_rmspe"`
}

// MarketSelection ranks candidate test sets by the smallest effect a
// geo experiment on them would detect, by simulation over the panel's own
// history, as GeoLift's GeoLiftMarketSelection does: for each candidate set
// of each size and each duration D, a test is simulated on the last D
// periods (and, with Lookback, on windows ending earlier), the effect is
// planted by multiplying the set's outcomes in the window by 1 + effect, and
// the conformal test of no effect (Chernozhukov, Wüthrich & Zhu 2021, as in
// Run) is run at level Alpha on the synthetic control of the set's average
// from the other markets. The power at an effect is the share of windows
// where the test rejects; the MDE is the smallest effect of Effects whose
// power reaches Power. Candidates are ranked by MDE (undetectable last),
// then by the scaled pre-period RMSPE.
//
// Candidate sets are drawn uniformly at random (o.Rand) among the markets
// not excluded, always holding o.Include; GeoLift instead proposes sets from
// a similarity ranking of markets, which this does not replicate. Only
// positive lifts are simulated.
func MarketSelection(p Panel, o PowerOptions) ([]Candidate, error) {
	if o.Rand == nil {
		panic("synth: MarketSelection: no Rand")
	}
	if o.Alpha == 0 {
		o.Alpha = 0.1
	}
	if o.Power == 0 {
		o.Power = 0.8
	}
	if o.Candidates == 0 {
		o.Candidates = 20
	}
	if o.Lookback == 0 {
		o.Lookback = 1
	}
	if o.Method == "" {
		o.Method = SCM
	}
	if o.Effects == nil {
		for k := 1; k <= 30; k++ {
			o.Effects = append(o.Effects, float64(k)/100)
		}
	}
	U, T := len(p.Units), len(p.Periods)
	excluded := make([]bool, U)
	for _, u := range o.Exclude {
		excluded[u] = true
	}
	var pool []int
	for u := range U {
		if !excluded[u] && !slices.Contains(o.Include, u) {
			pool = append(pool, u)
		}
	}
	var out []Candidate
	for _, n := range o.Sizes {
		if n < len(o.Include) || n-len(o.Include) > len(pool) {
			return nil, fmt.Errorf("%w: %d test markets with %d required and %d others available", ErrInsufficient, n, len(o.Include), len(pool))
		}
		if U-n < 2 {
			return nil, fmt.Errorf("%w: %d test markets leave %d donors", ErrInsufficient, n, U-n)
		}
		seen := map[string]bool{}
		for tries := 0; len(seen) < o.Candidates && tries < 20*o.Candidates; tries++ {
			set := slices.Clone(o.Include)
			perm := o.Rand.Perm(len(pool))
			for _, i := range perm[:n-len(o.Include)] {
				set = append(set, pool[i])
			}
			slices.Sort(set)
			key := fmt.Sprint(set)
			if seen[key] {
				continue
			}
			seen[key] = true
			for _, d := range o.Durations {
				c, err := simulate(p, o, set, d)
				if err != nil {
					return nil, err
				}
				out = append(out, *c)
			}
		}
	}
	if T < 1 {
		return nil, fmt.Errorf("%w: empty panel", ErrInsufficient)
	}
	sort.SliceStable(out, func(a, b int) bool {
		ma, mb := out[a].MDE, out[b].MDE
		switch {
		case ma != nil && mb != nil && *ma != *mb:
			return *ma < *mb
		case (ma == nil) != (mb == nil):
			return ma != nil
		}
		return out[a].ScaledRMSPE < out[b].ScaledRMSPE
	})
	for i := range out {
		out[i].Rank = i + 1
	}
	return out, nil
}

// simulate runs the power simulation of one set and duration.
func simulate(p Panel, o PowerOptions, set []int, d int) (*Candidate, error) {
	T := len(p.Periods)
	if d < 1 || T-d-(o.Lookback-1) < 3 {
		return nil, fmt.Errorf("%w: a %d-period test with %d lookback windows leaves fewer than 3 pre-periods in %d", ErrInsufficient, d, o.Lookback, T)
	}
	c := &Candidate{Duration: d}
	for _, u := range set {
		c.Markets = append(c.Markets, p.Units[u])
	}
	var donors []int
	for u := range p.Units {
		if !slices.Contains(set, u) {
			donors = append(donors, u)
		}
	}
	avg := make([]float64, T)
	for _, u := range set {
		for t := range T {
			avg[t] += p.Y[u][t] / float64(len(set))
		}
	}
	type window struct {
		f   *fitter
		y   []float64
		end int
	}
	var wins []window
	for k := range o.Lookback {
		end := T - k
		f := &fitter{Treated: avg[:end], Method: o.Method, Intercept: o.Intercept}
		for _, j := range donors {
			f.Donors = append(f.Donors, p.Y[j][:end])
		}
		res, err := f.fit(seq(0, end-d), nil)
		if err != nil {
			return nil, err
		}
		if k == 0 {
			m, _ := meanVar(avg[:end-d])
			g := make([]float64, end-d)
			for t := range g {
				g[t] = avg[t] - res.Synthetic[t]
			}
			c.ScaledRMSPE = rms(g) / math.Max(math.Abs(m), 1e-300)
		}
		f.Lambda = res.Lambda
		wins = append(wins, window{f, avg[:end], end})
	}
	y := make([]float64, T)
	for _, e := range o.Effects {
		detected := 0
		for _, w := range wins {
			y = y[:w.end]
			copy(y, w.y)
			for t := w.end - d; t < w.end; t++ {
				y[t] *= 1 + e
			}
			pv, err := conformalP(w.f, w.end-d, y, 0)
			if err != nil {
				return nil, err
			}
			if pv <= o.Alpha {
				detected++
			}
		}
		pw := float64(detected) / float64(len(wins))
		c.Curve = append(c.Curve, PowerPoint{e, pw})
		if pw >= o.Power {
			v := e
			c.MDE = &v
			break // the smallest effect reaching the target power
		}
	}
	return c, nil
}

// String is the candidate in one line, for logs and the CLI.
func (c Candidate) String() string {
	mde := "none"
	if c.MDE != nil {
		mde = fmt.Sprintf("%.0f%%", 100**c.MDE)
	}
	return fmt.Sprintf("#%d %s, %d periods: MDE %s, scaled RMSPE %.4f", c.Rank, strings.Join(c.Markets, "+"), c.Duration, mde, c.ScaledRMSPE)
}
