package metric

import (
	"context"
	"math"
	"math/big"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/liftlab/lift/experiment"
)

// Dataset is what an engine reads: exposures (Variant "" is NULL, a holdout
// unit) and events, times at microsecond precision.
type Dataset struct {
	Exposures []experiment.Exposure
	Events    []experiment.Event
}

// Memory is the reference engine: it evaluates plans unit by unit in Go, by the
// definitions of the package doc, over a Dataset held in memory. It is meant for
// tests and small data; it never changes the Dataset.
type Memory struct{ data Dataset }

var _ Engine = (*Memory)(nil)

// NewMemory returns the reference engine over d.
func NewMemory(d Dataset) *Memory { return &Memory{data: d} }

// memUnit is one unit of a population.
type memUnit struct {
	id       string
	arm      string
	t0, last time.Time
	arms     map[string]bool
	analyzed bool
	values   []float64 // per column; NaN is NULL
}

// population returns the population's units sorted by id.
func (m *Memory) population(pop Population) []*memUnit {
	byID := map[string]*memUnit{}
	for i := range m.data.Exposures {
		x := &m.data.Exposures[i]
		arm, ok := pop.Select(x)
		if !ok || !pop.Before(x.TS) {
			continue
		}
		u := byID[x.Unit]
		if u == nil {
			u = &memUnit{id: x.Unit, t0: x.TS, last: x.TS, arms: map[string]bool{}}
			byID[x.Unit] = u
		}
		if x.TS.Before(u.t0) {
			u.t0 = x.TS
		}
		if x.TS.After(u.last) {
			u.last = x.TS
		}
		u.arms[arm] = true
		u.arm = arm
	}
	out := make([]*memUnit, 0, len(byID))
	for _, u := range byID {
		u.analyzed = len(u.arms) == 1 && slices.Contains(pop.Arms, u.arm)
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// values computes every column of p for the analyzed units, capped or clamped,
// and returns the analyzed units and the number exposed to several arms.
func (m *Memory) values(p *Plan) ([]*memUnit, int64) {
	pop := p.Population
	var analyzed []*memUnit
	var multi int64
	for _, u := range m.population(pop) {
		if len(u.arms) > 1 {
			multi++
		}
		if u.analyzed {
			analyzed = append(analyzed, u)
		}
	}
	events := map[string][]*experiment.Event{}
	for i := range m.data.Events {
		e := &m.data.Events[i]
		if pop.Before(e.TS) {
			events[e.Unit] = append(events[e.Unit], e)
		}
	}
	for _, u := range analyzed {
		u.values = make([]float64, len(p.Columns))
		for k, c := range p.Columns {
			var s neumaier
			n := 0
			for _, e := range events[u.id] {
				dt := e.TS.UnixMicro() - u.t0.UnixMicro()
				if e.Type == c.EventType && dt >= c.Lo && (c.Hi == Unbounded || dt < c.Hi) {
					s.add(e.Value)
					n++
				}
			}
			var v float64
			switch c.Aggregation {
			case experiment.Sum:
				v = s.sum()
			case experiment.Count:
				v = float64(n)
			case experiment.Binary:
				if n > 0 {
					v = 1
				}
			case experiment.Mean:
				v = math.NaN()
				if n > 0 {
					v = s.sum() / float64(n)
				}
			default:
				panic("metric: column aggregation " + string(c.Aggregation))
			}
			if c.MatureAt != 0 && u.t0.UnixMicro()+c.Hi > c.MatureAt {
				v = math.NaN() // the window has not ended: no value yet
			}
			u.values[k] = v
		}
	}
	col := make([]float64, len(analyzed))
	for k, c := range p.Columns {
		for i, u := range analyzed {
			col[i] = u.values[k]
		}
		if c.Clamp != nil {
			for i, v := range col {
				if !math.IsNaN(v) {
					col[i] = math.Max(math.Min(v, c.Clamp.Upper), c.Clamp.Lower)
				}
			}
		} else {
			Winsorize(col, c.Floor, c.Cap)
		}
		for i, u := range analyzed {
			u.values[k] = col[i]
		}
	}
	return analyzed, multi
}

// Stats implements Engine.
func (m *Memory) Stats(ctx context.Context, p *Plan) (*Stats, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	units, multi := m.values(p)
	st := NewStats(p)
	st.MultipleArms = multi
	arm := map[string]int{}
	for i, a := range p.Population.Arms {
		arm[a] = i
	}
	for _, u := range units {
		st.Units[u.arm]++
	}
	// Pilots: each column's mean over the analyzed units' non-NULL values.
	pilot := make([]float64, len(p.Columns))
	for k := range p.Columns {
		var s neumaier
		n := 0
		for _, u := range units {
			if v := u.values[k]; !math.IsNaN(v) {
				s.add(v)
				n++
			}
		}
		if n > 0 {
			pilot[k] = s.sum() / float64(n)
		}
	}
	val := func(u *memUnit, k int) float64 {
		v := u.values[k]
		if math.IsNaN(v) {
			v = 0
		}
		return v - pilot[k]
	}
	for _, mp := range p.Metrics {
		arms := st.Metrics[mp.Name]
		for _, s := range mp.Sums {
			acc := make([]neumaier, len(arms))
			for _, u := range units {
				if mp.OwnCount && math.IsNaN(u.values[mp.Y]) {
					continue
				}
				a := arm[u.arm]
				switch s.Field.Op() {
				case OpCount:
					acc[a].add(1)
				case OpLinear:
					acc[a].add(val(u, s.A))
				case OpProduct:
					acc[a].add(val(u, s.A) * val(u, s.B))
				}
			}
			for a := range arms {
				v := acc[a].sum()
				if s.Field.Op() == OpPilot {
					v = pilot[s.A]
				}
				s.Field.Set(&arms[a], v)
			}
		}
	}
	// Checksums: exact sums of the values in millionths.
	for i, a := range p.Population.Arms {
		if st.Units[a] == 0 {
			continue
		}
		parts := make([]string, len(p.Columns))
		for k := range p.Columns {
			sum := new(big.Int)
			for _, u := range units {
				if v := u.values[k]; arm[u.arm] == i && !math.IsNaN(v) {
					r, _ := new(big.Float).SetFloat64(math.Round(v * 1e6)).Int(nil)
					sum.Add(sum, r)
				}
			}
			parts[k] = sum.String()
		}
		st.Checksums[a] = strings.Join(parts, ",")
	}
	f, err := m.Freshness(ctx, p.Population)
	if err != nil {
		return nil, err
	}
	f.LatestUnitEvent = nil // see Stats.Freshness
	st.Freshness = f
	return st, nil
}

// Bounded implements Engine.
func (m *Memory) Bounded(ctx context.Context, p *Plan) (*Bounded, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	units, _ := m.values(p)
	out := NewBounded(p)
	arm := map[string]int{}
	for i, a := range p.Population.Arms {
		arm[a] = i
	}
	for _, u := range units {
		out.Units[u.arm]++
	}
	for j, mp := range p.Metrics {
		bm := &out.Metrics[j]
		sums := make([][2]neumaier, len(bm.Arms))
		for _, u := range units {
			v := u.values[mp.Y]
			if math.IsNaN(v) {
				continue
			}
			a := arm[u.arm]
			bm.Arms[a].N++
			sums[a][0].add(v)
			sums[a][1].add(v * v)
		}
		for a := range bm.Arms {
			bm.Arms[a].Sum, bm.Arms[a].SumSq = sums[a][0].sum(), sums[a][1].sum()
		}
	}
	return out, nil
}

// UnitValues implements Engine.
func (m *Memory) UnitValues(ctx context.Context, p *Plan) (*UnitValues, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	units, multi := m.values(p)
	out := &UnitValues{MultipleArms: multi, Values: []UnitValue{}}
	y := p.Metrics[0].Y
	for _, u := range units {
		if v := u.values[y]; !math.IsNaN(v) {
			out.Values = append(out.Values, UnitValue{Unit: u.id, Arm: u.arm, Value: v})
		}
	}
	return out, nil
}

// Panel implements Engine.
func (m *Memory) Panel(ctx context.Context, p *PanelPlan) (*Panel, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	q := p.Query
	inRange := func(e *experiment.Event) bool {
		us := e.TS.UnixMicro()
		return e.Type == p.EventType && us >= p.FromMicros && us < p.ToMicros
	}
	groups := map[string]map[int]bool{}
	add := func(unit string, g int) {
		if groups[unit] == nil {
			groups[unit] = map[int]bool{}
		}
		groups[unit][g] = true
	}
	for g, sel := range q.Groups {
		switch {
		case sel.Rest:
			for i := range m.data.Events {
				e := &m.data.Events[i]
				if _, taken := groups[e.Unit]; !taken && inRange(e) {
					add(e.Unit, g)
				}
			}
		case sel.Units != nil:
			for _, u := range sel.Units {
				add(u, g)
			}
		default:
			for _, x := range m.data.Exposures {
				if x.Experiment == sel.Experiment && x.Variant == sel.Variant {
					add(x.Unit, g)
				}
			}
		}
	}
	var ids []string
	overlap := 0
	for u, gs := range groups {
		if len(gs) > 1 {
			overlap++
			continue
		}
		ids = append(ids, u)
	}
	sort.Strings(ids)
	num := map[string]int{}
	gr := make([]int, len(ids))
	for i, u := range ids {
		num[u] = i
		for g := range groups[u] {
			gr[i] = g
		}
	}
	type key struct{ unit, period int }
	sums := map[key]*neumaier{}
	counts := map[key]int{}
	for i := range m.data.Events {
		e := &m.data.Events[i]
		n, ok := num[e.Unit]
		if !ok || !inRange(e) {
			continue
		}
		k := key{n, int((e.TS.UnixMicro() - p.FromMicros) / p.PeriodMicros)}
		if sums[k] == nil {
			sums[k] = &neumaier{}
		}
		sums[k].add(e.Value)
		counts[k]++
	}
	var cells []PanelCell
	for k, s := range sums {
		v := s.sum()
		switch p.Aggregation {
		case experiment.Count:
			v = float64(counts[k])
		case experiment.Binary:
			v = 1
		}
		cells = append(cells, PanelCell{Unit: k.unit, Period: k.period, Value: v})
	}
	return AssemblePanel(p, ids, gr, overlap, cells)
}

// Freshness implements Engine.
func (m *Memory) Freshness(ctx context.Context, pop Population) (Freshness, error) {
	if err := ctx.Err(); err != nil {
		return Freshness{}, err
	}
	var f Freshness
	later := func(dst **time.Time, t time.Time, after bool) {
		if *dst == nil || (after && t.After(**dst)) || (!after && t.Before(**dst)) {
			t := t.UTC()
			*dst = &t
		}
	}
	in := map[string]bool{}
	for _, u := range m.population(pop) {
		in[u.id] = true
		later(&f.LatestExposure, u.last, true)
		later(&f.FirstExposure, u.t0, false)
	}
	for _, e := range m.data.Events {
		if !pop.Before(e.TS) {
			continue
		}
		later(&f.LatestEvent, e.TS, true)
		if in[e.Unit] {
			later(&f.LatestUnitEvent, e.TS, true)
		}
	}
	return f, nil
}

// neumaier is compensated (Kahan–Babuška–Neumaier) summation, as DuckDB's fsum.
type neumaier struct{ s, c float64 }

func (n *neumaier) add(x float64) {
	t := n.s + x
	if math.Abs(n.s) >= math.Abs(x) {
		n.c += (n.s - t) + x
	} else {
		n.c += (x - t) + n.s
	}
	n.s = t
}

func (n *neumaier) sum() float64 { return n.s + n.c }
