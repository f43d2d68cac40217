package journey

import (
	"sort"
	"time"

	"github.com/liftlab/lift/scorer"
)

// Guardrails are a journey's live guardrails since the Decider started (latency
// quantiles over the last Options.LatencyWindow decisions, item exposures over
// the current UTC day).
type Guardrails struct {
	Journey         string           `json:"journey"`
	Decisions       map[string]int64 `json:"decisions"` // per policy
	Fallbacks       map[string]int64 `json:"fallbacks"` // per cause (timeout, error, no_history, model_not_loaded)
	LatencyP50      float64          `json:"latency_p50_ms"`
	LatencyP95      float64          `json:"latency_p95_ms"`
	LatencyP99      float64          `json:"latency_p99_ms"`
	FallbackRate    float64          `json:"fallback_rate"`    // fallback / (personalized + fallback)
	IneligibleShare float64          `json:"ineligible_share"` // ineligible / decisions
	Day             time.Time        `json:"day"`              // the UTC day of Gini
	Gini            float64          `json:"gini"`             // Gini of the day's item exposure counts (items shown)
	DistinctItems   int              `json:"distinct_items"`   // items shown at least once that day
}

// liveStats accumulates one journey's guardrails.
type liveStats struct {
	decisions map[string]int64
	fallbacks map[string]int64
	lat       []float64 // ring of recent latencies (ms)
	next      int
	full      bool
	day       time.Time
	items     map[string]int64
}

func (d *Decider) observe(key string, dec *Decision) {
	day := d.opt.Now().UTC().Truncate(24 * time.Hour)
	d.statsMu.Lock()
	defer d.statsMu.Unlock()
	s := d.stats[key]
	if s == nil {
		s = &liveStats{decisions: map[string]int64{}, fallbacks: map[string]int64{}, lat: make([]float64, d.opt.LatencyWindow)}
		d.stats[key] = s
	}
	s.decisions[dec.Policy]++
	if dec.Policy == "fallback" {
		s.fallbacks[dec.Why]++
	}
	s.lat[s.next] = dec.LatencyMS
	s.next++
	if s.next == len(s.lat) {
		s.next, s.full = 0, true
	}
	if !s.day.Equal(day) {
		s.day, s.items = day, map[string]int64{}
	}
	for _, it := range dec.Items {
		s.items[it.ID]++
	}
}

// Guardrails returns the live guardrails of every journey that has decided, by key.
func (d *Decider) Guardrails() []Guardrails {
	d.statsMu.Lock()
	defer d.statsMu.Unlock()
	out := make([]Guardrails, 0, len(d.stats))
	for key, s := range d.stats {
		g := Guardrails{Journey: key, Decisions: map[string]int64{}, Fallbacks: map[string]int64{}, Day: s.day, DistinctItems: len(s.items)}
		var total int64
		for p, n := range s.decisions {
			g.Decisions[p] = n
			total += n
		}
		for w, n := range s.fallbacks {
			g.Fallbacks[w] = n
		}
		if n := s.decisions["personalized"] + s.decisions["fallback"]; n > 0 {
			g.FallbackRate = float64(s.decisions["fallback"]) / float64(n)
		}
		if total > 0 {
			g.IneligibleShare = float64(s.decisions["ineligible"]) / float64(total)
		}
		lat := s.lat[:s.next]
		if s.full {
			lat = s.lat
		}
		sorted := append([]float64(nil), lat...)
		sort.Float64s(sorted)
		g.LatencyP50, g.LatencyP95, g.LatencyP99 = quantile(sorted, 0.5), quantile(sorted, 0.95), quantile(sorted, 0.99)
		counts := make([]float64, 0, len(s.items))
		for _, n := range s.items {
			counts = append(counts, float64(n))
		}
		g.Gini = scorer.Gini(counts)
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Journey < out[j].Journey })
	return out
}

// quantile is the linear-interpolation quantile of sorted x (R type 7, the
// definition of DuckDB's quantile_cont and numpy's default):
//
//	h = (n−1)·p,  Q(p) = x₍⌊h⌋₎ + (h − ⌊h⌋)·(x₍⌊h⌋+1₎ − x₍⌊h⌋₎)
//
// (Hyndman & Fan 1996, The American Statistician 50:361). 0 for empty x.
func quantile(sorted []float64, p float64) float64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	h := float64(n-1) * p
	lo := int(h)
	if lo+1 >= n {
		return sorted[n-1]
	}
	return sorted[lo] + (h-float64(lo))*(sorted[lo+1]-sorted[lo])
}
