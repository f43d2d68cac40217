package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/go-faster/city"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/metric"
)

// Options configure an Engine.
type Options struct {
	// Shards are the native-protocol addresses (host:port) of every shard, in
	// the order of the cluster's remote_servers entry; one address is a single
	// server. Global queries go to the first.
	Shards []string
	// Database holds the tables (default "default").
	Database string
	// DialTimeout bounds each connection attempt (default 5 s).
	DialTimeout time.Duration
	// Log, if set, is called with every query before it is sent: the shard it
	// goes to and whether it is one of a set sent to every shard at once.
	Log func(shard int, everyShard bool, query string)
	// Events, if set, is the team's own events table, read instead of
	// events_local and events.
	Events *EventsTable
}

// EventsTable is an events table the team already has: on every server the
// local table, and over the cluster a Distributed table with the sharding key
// cityHash64 of the unit column (so that a unit's events sit with its
// exposures). Columns maps each of Lift's columns (event_id, unit, type, ts,
// value) to an SQL expression over the table's columns (absent: the same
// name); ts must come out as Int64 microseconds since the Unix epoch and value
// as Float64, e.g. "ts": "toInt64(toUnixTimestamp(event_time)) * 1000000".
type EventsTable struct {
	Local, Distributed string
	Columns            map[string]string
}

// EventColumns are Lift's event columns, in the order EventsTable maps them.
var EventColumns = []string{"event_id", "unit", "type", "ts", "value"}

// from is the table as Lift's events columns: table itself when Columns maps
// nothing, else a subquery renaming them.
func (t *EventsTable) from(table string) string {
	if len(t.Columns) == 0 {
		return table
	}
	sel := make([]string, len(EventColumns))
	for i, c := range EventColumns {
		expr := c
		if x := t.Columns[c]; x != "" {
			expr = x
		}
		sel[i] = expr + " AS " + c
	}
	return "(SELECT " + strings.Join(sel, ", ") + " FROM " + table + ")"
}

// Engine evaluates metric plans in ClickHouse. It is safe for concurrent use.
type Engine struct {
	shards []driver.Conn
	log    func(shard int, everyShard bool, query string)
	// exp and ev are what global queries read: the Distributed tables over
	// several shards, the local tables on a single server; evLocal is what
	// per-shard queries read of events.
	exp, ev, evLocal string
	// team is the team's own events table (Options.Events.Local), "" if none.
	team string
}

var _ metric.Engine = (*Engine)(nil)

// Open connects to every shard and checks that each answers.
func Open(ctx context.Context, o Options) (*Engine, error) {
	if len(o.Shards) == 0 {
		return nil, experiment.E(experiment.Invalid, experiment.Field("shards"), experiment.Errorf("at least one ClickHouse address is required"))
	}
	if o.Database == "" {
		o.Database = "default"
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = 5 * time.Second
	}
	e := &Engine{exp: ExposuresLocal, ev: EventsLocal, evLocal: EventsLocal, log: o.Log}
	if len(o.Shards) > 1 {
		e.exp, e.ev = Exposures, Events
	}
	if t := o.Events; t != nil {
		if t.Local == "" || (len(o.Shards) > 1 && t.Distributed == "") {
			return nil, experiment.E(experiment.Invalid, experiment.Field("events"), experiment.Errorf("an events table needs its local table, and over several shards its Distributed table"))
		}
		for c := range t.Columns {
			if !slices.Contains(EventColumns, c) {
				return nil, experiment.E(experiment.Invalid, experiment.Field("events.columns"), experiment.Errorf("no event column %q (the columns are %s)", c, strings.Join(EventColumns, ", ")))
			}
		}
		e.evLocal, e.ev, e.team = t.from(t.Local), t.from(t.Local), t.Local
		if len(o.Shards) > 1 {
			e.ev = t.from(t.Distributed)
		}
	}
	for _, a := range o.Shards {
		c, err := ch.Open(&ch.Options{Addr: []string{a}, Protocol: ch.Native, DialTimeout: o.DialTimeout,
			Auth: ch.Auth{Database: o.Database, Username: "default"}, MaxOpenConns: 8})
		if err == nil {
			err = c.Ping(ctx)
		}
		if err != nil {
			e.Close()
			return nil, wrap("open "+a, err)
		}
		e.shards = append(e.shards, c)
	}
	return e, nil
}

// Close closes the connections.
func (e *Engine) Close() error {
	var errs []error
	for _, c := range e.shards {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return experiment.E(experiment.Internal, fmt.Errorf("clickhouse: %s: %w", what, err))
}

// Shard is the shard (index into Options.Shards) that holds unit: cityHash64(unit)
// modulo the number of shards, as the Distributed tables' sharding key with
// equal weights.
func Shard(unit string, shards int) int { return int(city.CH64([]byte(unit)) % uint64(shards)) }

// Load inserts exposures and events into the local tables of the shards that
// hold their units (see Shard), in batches that name their columns.
func (e *Engine) Load(ctx context.Context, d metric.Dataset) error {
	n := len(e.shards)
	for i, c := range e.shards {
		b, err := c.PrepareBatch(ctx, "INSERT INTO "+ExposuresLocal+" (experiment, unit, variant, ts, in_holdout, holdout_version)")
		if err != nil {
			return wrap("insert exposures", err)
		}
		for _, x := range d.Exposures {
			if Shard(x.Unit, n) != i {
				continue
			}
			h := uint8(0)
			if x.InHoldout {
				h = 1
			}
			if err := b.Append(x.Experiment, x.Unit, x.Variant, x.TS.UnixMicro(), h, int64(x.HoldoutVersion)); err != nil {
				return wrap("insert exposures", err)
			}
		}
		if err := b.Send(); err != nil {
			return wrap("insert exposures", err)
		}
		b, err = c.PrepareBatch(ctx, "INSERT INTO "+EventsLocal+" (event_id, unit, type, ts, value)")
		if err != nil {
			return wrap("insert events", err)
		}
		for _, v := range d.Events {
			if Shard(v.Unit, n) != i {
				continue
			}
			if err := b.Append(v.EventID, v.Unit, v.Type, v.TS.UnixMicro(), v.Value); err != nil {
				return wrap("insert events", err)
			}
		}
		if err := b.Send(); err != nil {
			return wrap("insert events", err)
		}
	}
	return nil
}

// lit is a string literal.
func lit(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	return "'" + r.Replace(s) + "'"
}

// flit is the exact float64 x, by its bits (a decimal literal could be parsed
// one unit in the last place off).
func flit(x float64) string {
	return fmt.Sprintf("reinterpretAsFloat64(reinterpretAsString(toUInt64(%d)))", math.Float64bits(x))
}

func list(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = lit(x)
	}
	return "(" + strings.Join(q, ", ") + ")"
}

// popWhere selects the population's exposures (cut by Until) and armExpr is a
// unit's arm in one of them.
func popWhere(pop metric.Population) (where, armExpr string) {
	if pop.Holdout == nil {
		where = "experiment = " + lit(pop.Experiment) + " AND variant != ''"
		armExpr = "variant"
	} else {
		exps := pop.Holdout.Experiments
		if len(exps) == 0 {
			exps = []string{""}
		}
		where = fmt.Sprintf("holdout_version = %d AND experiment IN %s", pop.Holdout.Version, list(exps))
		armExpr = fmt.Sprintf("if(in_holdout = 1, %s, %s)", lit(metric.HoldoutArm), lit(metric.ExposedArm))
	}
	return where + untilCond(pop), armExpr
}

func untilCond(pop metric.Population) string {
	if pop.Until.IsZero() {
		return ""
	}
	return fmt.Sprintf(" AND ts < %d", pop.Until.UnixMicro())
}

// unitsSQL is one row per population unit: unit, first exposure t0, number of
// arms narms and an arm.
func unitsSQL(exp string, pop metric.Population) string {
	where, arm := popWhere(pop)
	return fmt.Sprintf("SELECT unit, min(ts) AS t0, uniqExact(a) AS narms, any(a) AS arm FROM (SELECT unit, ts, %s AS a FROM %s WHERE %s) GROUP BY unit", arm, exp, where)
}

// valuesSQL is one row per analyzed unit: unit, arm and v0…vk, the plan's
// columns (nan for NULL), with clamps and caps applied; a column with a
// percentile cap is capped (both tails) only when caps[k] has its limits, and
// is raw in the first pass (caps nil) that computes them.
func valuesSQL(exp, ev string, p *metric.Plan, caps map[int]limits) string {
	pop := p.Population
	where, _ := popWhere(pop)
	types := []string{}
	for _, c := range p.Columns {
		if !slices.Contains(types, c.EventType) {
			types = append(types, c.EventType)
		}
	}
	if len(types) == 0 {
		types = []string{""}
	}
	var cols []string
	for k, c := range p.Columns {
		cond := fmt.Sprintf("type = %s AND ts - t0 >= %d", lit(c.EventType), c.Lo)
		if c.Hi != metric.Unbounded {
			cond += fmt.Sprintf(" AND ts - t0 < %d", c.Hi)
		}
		var v string
		switch c.Aggregation {
		case experiment.Sum:
			v = fmt.Sprintf("sumKahanIf(value, %s)", cond)
		case experiment.Count:
			v = fmt.Sprintf("toFloat64(countIf(%s))", cond)
		case experiment.Binary:
			v = fmt.Sprintf("toFloat64(countIf(%s) > 0)", cond)
		case experiment.Mean:
			v = fmt.Sprintf("if(countIf(%[1]s) > 0, sumKahanIf(value, %[1]s) / countIf(%[1]s), nan)", cond)
		default:
			panic("clickhouse: column aggregation " + string(c.Aggregation))
		}
		if c.MatureAt != 0 {
			// The window has not ended by the analysis time: no value yet.
			v = fmt.Sprintf("if(any(t0) + %d > %d, nan, %s)", c.Hi, c.MatureAt, v)
		}
		cols = append(cols, fmt.Sprintf("%s AS r%d", v, k))
	}
	inner := fmt.Sprintf(`SELECT unit, arm%s FROM (
	SELECT unit, type, ts, value FROM %s WHERE type IN %s%s
	UNION ALL SELECT unit, '' AS type, toInt64(0) AS ts, toFloat64(0) AS value FROM %s WHERE %s
) ALL INNER JOIN (SELECT unit, t0, arm FROM (%s) WHERE narms = 1 AND arm IN %s) USING unit
GROUP BY unit, arm`, prefixed(", ", cols), ev, list(types), untilCond(pop), exp, where, unitsSQL(exp, pop), list(pop.Arms))
	// Caps and clamps apply outside: least and greatest do not keep a nan (a
	// mean without events, a window not matured). A column with a percentile
	// cap is left raw until caps has its limits (both tails are of the values
	// before capping).
	var outer []string
	for k, c := range p.Columns {
		r := fmt.Sprintf("r%d", k)
		v := r
		pc, ok := caps[k]
		switch {
		case c.Clamp != nil:
			v = fmt.Sprintf("greatest(least(%s, %s), %s)", r, flit(c.Clamp.Upper), flit(c.Clamp.Lower))
		case ok || !hasPercentile(c):
			if hi, ok := limitOf(c.Cap, pc.hi); ok {
				v = fmt.Sprintf("least(%s, %s)", v, flit(hi))
			}
			if lo, ok := limitOf(c.Floor, pc.lo); ok {
				v = fmt.Sprintf("greatest(%s, %s)", v, flit(lo))
			}
		}
		if v != r {
			v = fmt.Sprintf("if(isNaN(%s), nan, %s)", r, v)
		}
		outer = append(outer, fmt.Sprintf("%s AS v%d", v, k))
	}
	return fmt.Sprintf("SELECT unit, arm%s FROM (%s)", prefixed(", ", outer), inner)
}

// limits are a column's percentile caps as computed (the fixed ones are in
// the plan).
type limits struct{ lo, hi float64 }

func hasPercentile(c metric.Column) bool {
	return c.Cap.Kind == metric.PercentileCap || c.Floor.Kind == metric.PercentileCap
}

// limitOf is cap's limit: its fixed value, or q for a percentile cap.
func limitOf(cap metric.Cap, q float64) (float64, bool) {
	switch cap.Kind {
	case metric.FixedCap:
		return cap.Value, true
	case metric.PercentileCap:
		return q, true
	}
	return 0, false
}

func prefixed(sep string, xs []string) string {
	if len(xs) == 0 {
		return ""
	}
	return sep + strings.Join(xs, sep)
}

// query runs q on shard i and scans every row with scan.
func (e *Engine) query(ctx context.Context, i int, q string, scan func(driver.Rows) error) error {
	return e.queryOn(ctx, i, false, q, scan)
}

func (e *Engine) queryOn(ctx context.Context, i int, every bool, q string, scan func(driver.Rows) error) error {
	if e.log != nil {
		e.log(i, every, q)
	}
	rows, err := e.shards[i].Query(ctx, q)
	if err != nil {
		return wrap("query", fmt.Errorf("%w\n%s", err, q))
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return wrap("scan", err)
		}
	}
	return wrap("query", rows.Err())
}

// everyShard runs f on every shard concurrently.
func (e *Engine) everyShard(ctx context.Context, f func(ctx context.Context, i int) error) error {
	errs := make([]error, len(e.shards))
	var wg sync.WaitGroup
	for i := range e.shards {
		wg.Go(func() { errs[i] = f(ctx, i) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// global are a plan's percentile caps and pilot shifts, computed over every
// analyzed unit of every shard.
type global struct {
	caps   map[int]limits
	pilots []float64
}

// globals computes the caps (type-7 quantiles of the sorted non-NULL values
// before capping) and then the pilots (means of the capped non-NULL values), in
// one query over the global tables.
func (e *Engine) globals(ctx context.Context, p *metric.Plan) (*global, error) {
	g := &global{caps: map[int]limits{}, pilots: make([]float64, len(p.Columns))}
	if len(p.Columns) == 0 {
		return g, nil
	}
	var sel []string
	for k, c := range p.Columns {
		if hasPercentile(c) {
			sel = append(sel, fmt.Sprintf("arraySort(groupArrayIf(v%[1]d, NOT isNaN(v%[1]d)))", k))
		} else {
			sel = append(sel, fmt.Sprintf("toFloat64(countIf(NOT isNaN(v%[1]d)))", k), fmt.Sprintf("sumKahanIf(v%[1]d, NOT isNaN(v%[1]d))", k))
		}
	}
	q := fmt.Sprintf("SELECT %s FROM (%s)", strings.Join(sel, ", "), valuesSQL(e.exp, e.ev, p, nil))
	err := e.query(ctx, 0, q, func(r driver.Rows) error {
		var dst []any
		for _, c := range p.Columns {
			if hasPercentile(c) {
				dst = append(dst, new([]float64))
			} else {
				dst = append(dst, new(float64), new(float64))
			}
		}
		if err := r.Scan(dst...); err != nil {
			return err
		}
		i := 0
		for k, c := range p.Columns {
			if !hasPercentile(c) {
				n, s := *dst[i].(*float64), *dst[i+1].(*float64)
				if n > 0 {
					g.pilots[k] = s / n
				}
				i += 2
				continue
			}
			xs := *dst[i].(*[]float64)
			i++
			if len(xs) == 0 {
				continue
			}
			l := limits{lo: math.Inf(-1), hi: math.Inf(1)}
			if c.Cap.Kind == metric.PercentileCap {
				l.hi = quantileSorted(xs, c.Cap.Percentile)
			}
			if c.Floor.Kind == metric.PercentileCap {
				l.lo = quantileSorted(xs, c.Floor.Percentile)
			}
			g.caps[k] = l
			hi, _ := limitOf(c.Cap, l.hi)
			lo, _ := limitOf(c.Floor, l.lo)
			if c.Cap.Kind == metric.NoCap {
				hi = math.Inf(1)
			}
			if c.Floor.Kind == metric.NoCap {
				lo = math.Inf(-1)
			}
			var acc neumaier
			for _, x := range xs {
				acc.add(math.Max(math.Min(x, hi), lo))
			}
			g.pilots[k] = acc.sum() / float64(len(xs))
		}
		return nil
	})
	return g, err
}

// quantileSorted is metric.Quantile of sorted xs.
func quantileSorted(s []float64, p float64) float64 {
	h := p * float64(len(s)-1)
	lo := int(math.Floor(h))
	q := s[lo]
	if lo+1 < len(s) {
		q += (h - float64(lo)) * (s[lo+1] - s[lo])
	}
	return q
}

// Stats implements metric.Engine. A first query over every shard computes the
// caps and pilots; a second runs on each shard over its local tables and the
// per-arm sums of the shards are added (see the package doc).
func (e *Engine) Stats(ctx context.Context, p *metric.Plan) (*metric.Stats, error) {
	g, err := e.globals(ctx, p)
	if err != nil {
		return nil, err
	}
	st := metric.NewStats(p)
	armIdx := map[string]int{}
	for i, a := range p.Population.Arms {
		armIdx[a] = i
	}
	val := func(k int) string {
		return fmt.Sprintf("(if(isNaN(v%[1]d), 0, v%[1]d) - %[2]s)", k, flit(g.pilots[k]))
	}
	var sel []string
	type slot struct{ metric, sum int }
	var slots []slot
	for i, mp := range p.Metrics {
		where := ""
		if mp.OwnCount {
			where = fmt.Sprintf("NOT isNaN(v%d)", mp.Y)
		}
		for j, s := range mp.Sums {
			var expr string
			switch s.Field.Op() {
			case metric.OpPilot:
				continue
			case metric.OpCount:
				expr = "1"
			case metric.OpLinear:
				expr = val(s.A)
			case metric.OpProduct:
				expr = val(s.A) + " * " + val(s.B)
			}
			if where == "" {
				sel = append(sel, fmt.Sprintf("sumKahan(toFloat64(%s))", expr))
			} else {
				sel = append(sel, fmt.Sprintf("sumKahanIf(toFloat64(%s), %s)", expr, where))
			}
			slots = append(slots, slot{i, j})
		}
	}
	// Checksums: Σ round(v·10⁶) (half away from zero) split into whole 2³²s and
	// the rest, each exact in Int64 sums.
	for k := range p.Columns {
		r := fmt.Sprintf("(if(v%[1]d < 0, -1, 1) * (floor(abs(v%[1]d * 1e6)) + (abs(v%[1]d * 1e6) - floor(abs(v%[1]d * 1e6)) >= 0.5)))", k)
		sel = append(sel, fmt.Sprintf("sumIf(toInt64(floor(%[1]s / 4294967296)), NOT isNaN(v%[2]d))", r, k),
			fmt.Sprintf("sumIf(toInt64(%[1]s - floor(%[1]s / 4294967296) * 4294967296), NOT isNaN(v%[2]d))", r, k))
	}
	type armSums struct {
		n      uint64
		sums   []float64
		hi, lo []int64
	}
	var mu sync.Mutex
	perArm := map[string][]armSums{}
	var multi uint64
	err = e.everyShard(ctx, func(ctx context.Context, i int) error {
		q := fmt.Sprintf("SELECT arm, count()%s FROM (%s) GROUP BY arm", prefixed(", ", sel), valuesSQL(ExposuresLocal, e.evLocal, p, g.caps))
		if err := e.queryOn(ctx, i, true, q, func(r driver.Rows) error {
			a := armSums{sums: make([]float64, len(slots)), hi: make([]int64, len(p.Columns)), lo: make([]int64, len(p.Columns))}
			var arm string
			dst := []any{&arm, &a.n}
			for i := range a.sums {
				dst = append(dst, &a.sums[i])
			}
			for k := range p.Columns {
				dst = append(dst, &a.hi[k], &a.lo[k])
			}
			if err := r.Scan(dst...); err != nil {
				return err
			}
			mu.Lock()
			perArm[arm] = append(perArm[arm], a)
			mu.Unlock()
			return nil
		}); err != nil {
			return err
		}
		return e.queryOn(ctx, i, true, fmt.Sprintf("SELECT countIf(narms > 1) FROM (%s)", unitsSQL(ExposuresLocal, p.Population)), func(r driver.Rows) error {
			var m uint64
			if err := r.Scan(&m); err != nil {
				return err
			}
			mu.Lock()
			multi += m
			mu.Unlock()
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	st.MultipleArms = int64(multi)
	for arm, shards := range perArm {
		ai, ok := armIdx[arm]
		if !ok {
			continue
		}
		var n uint64
		sums := make([]neumaier, len(slots))
		hi, lo := make([]*big.Int, len(p.Columns)), make([]*big.Int, len(p.Columns))
		for k := range hi {
			hi[k], lo[k] = new(big.Int), new(big.Int)
		}
		for _, s := range shards {
			n += s.n
			for i, v := range s.sums {
				sums[i].add(v)
			}
			for k := range p.Columns {
				hi[k].Add(hi[k], big.NewInt(s.hi[k]))
				lo[k].Add(lo[k], big.NewInt(s.lo[k]))
			}
		}
		st.Units[arm] = int64(n)
		for i, s := range slots {
			mp := p.Metrics[s.metric]
			mp.Sums[s.sum].Field.Set(&st.Metrics[mp.Name][ai], sums[i].sum())
		}
		if n > 0 {
			parts := make([]string, len(p.Columns))
			for k := range p.Columns {
				parts[k] = new(big.Int).Add(new(big.Int).Lsh(hi[k], 32), lo[k]).String()
			}
			st.Checksums[arm] = strings.Join(parts, ",")
		}
	}
	for _, mp := range p.Metrics {
		for _, s := range mp.Sums {
			if s.Field.Op() == metric.OpPilot {
				for a := range p.Population.Arms {
					s.Field.Set(&st.Metrics[mp.Name][a], g.pilots[s.A])
				}
			}
		}
	}
	f, err := e.Freshness(ctx, p.Population)
	if err != nil {
		return nil, err
	}
	st.Freshness = f
	return st, nil
}

// Bounded implements metric.Engine: one query per shard over its local
// tables, the per-arm sums added.
func (e *Engine) Bounded(ctx context.Context, p *metric.Plan) (*metric.Bounded, error) {
	out := metric.NewBounded(p)
	armIdx := map[string]int{}
	for i, a := range p.Population.Arms {
		armIdx[a] = i
	}
	var sel []string
	for _, mp := range p.Metrics {
		sel = append(sel, fmt.Sprintf("countIf(NOT isNaN(v%[1]d))", mp.Y), fmt.Sprintf("sumKahanIf(v%[1]d, NOT isNaN(v%[1]d))", mp.Y),
			fmt.Sprintf("sumKahanIf(v%[1]d * v%[1]d, NOT isNaN(v%[1]d))", mp.Y))
	}
	var mu sync.Mutex
	acc := make([][][2]neumaier, len(p.Metrics))
	for j := range acc {
		acc[j] = make([][2]neumaier, len(p.Population.Arms))
	}
	err := e.everyShard(ctx, func(ctx context.Context, i int) error {
		q := fmt.Sprintf("SELECT arm, count()%s FROM (%s) GROUP BY arm", prefixed(", ", sel), valuesSQL(ExposuresLocal, e.evLocal, p, nil))
		return e.queryOn(ctx, i, true, q, func(r driver.Rows) error {
			var arm string
			var n uint64
			ns := make([]uint64, len(p.Metrics))
			sums := make([][2]float64, len(p.Metrics))
			dst := []any{&arm, &n}
			for j := range p.Metrics {
				dst = append(dst, &ns[j], &sums[j][0], &sums[j][1])
			}
			if err := r.Scan(dst...); err != nil {
				return err
			}
			ai, ok := armIdx[arm]
			if !ok {
				return nil
			}
			mu.Lock()
			defer mu.Unlock()
			out.Units[arm] += int64(n)
			for j := range p.Metrics {
				out.Metrics[j].Arms[ai].N += int64(ns[j])
				acc[j][ai][0].add(sums[j][0])
				acc[j][ai][1].add(sums[j][1])
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	for j := range p.Metrics {
		for a := range p.Population.Arms {
			out.Metrics[j].Arms[a].Sum, out.Metrics[j].Arms[a].SumSq = acc[j][a][0].sum(), acc[j][a][1].sum()
		}
	}
	return out, nil
}

// UnitValues implements metric.Engine, over the global tables.
func (e *Engine) UnitValues(ctx context.Context, p *metric.Plan) (*metric.UnitValues, error) {
	g, err := e.globals(ctx, p)
	if err != nil {
		return nil, err
	}
	out := &metric.UnitValues{Values: []metric.UnitValue{}}
	y := p.Metrics[0].Y
	q := fmt.Sprintf("SELECT unit, arm, v%[1]d FROM (%[2]s) WHERE NOT isNaN(v%[1]d) ORDER BY unit", y, valuesSQL(e.exp, e.ev, p, g.caps))
	if err := e.query(ctx, 0, q, func(r driver.Rows) error {
		var u metric.UnitValue
		if err := r.Scan(&u.Unit, &u.Arm, &u.Value); err != nil {
			return err
		}
		out.Values = append(out.Values, u)
		return nil
	}); err != nil {
		return nil, err
	}
	err = e.query(ctx, 0, fmt.Sprintf("SELECT countIf(narms > 1) FROM (%s)", unitsSQL(e.exp, p.Population)), func(r driver.Rows) error {
		var m uint64
		err := r.Scan(&m)
		out.MultipleArms = int64(m)
		return err
	})
	return out, err
}

// Panel implements metric.Engine: the groups' units and the non-empty cells
// are read over the global tables and assembled by metric.AssemblePanel.
func (e *Engine) Panel(ctx context.Context, p *metric.PanelPlan) (*metric.Panel, error) {
	q := p.Query
	rangeWhere := fmt.Sprintf("type = %s AND ts >= %d AND ts < %d", lit(p.EventType), p.FromMicros, p.ToMicros)
	groups := map[string]map[int]bool{}
	add := func(unit string, g int) {
		if groups[unit] == nil {
			groups[unit] = map[int]bool{}
		}
		groups[unit][g] = true
	}
	readUnits := func(sql string, g int, rest bool) error {
		return e.query(ctx, 0, sql, func(r driver.Rows) error {
			var u string
			if err := r.Scan(&u); err != nil {
				return err
			}
			if _, taken := groups[u]; !rest || !taken {
				add(u, g)
			}
			return nil
		})
	}
	for g, sel := range q.Groups {
		var err error
		switch {
		case sel.Rest:
			err = readUnits(fmt.Sprintf("SELECT DISTINCT unit FROM %s WHERE %s", e.ev, rangeWhere), g, true)
		case sel.Units != nil:
			for _, u := range sel.Units {
				add(u, g)
			}
		default:
			err = readUnits(fmt.Sprintf("SELECT DISTINCT unit FROM %s WHERE experiment = %s AND variant = %s", e.exp, lit(sel.Experiment), lit(sel.Variant)), g, false)
		}
		if err != nil {
			return nil, err
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
	num := make(map[string]int, len(ids))
	gr := make([]int, len(ids))
	for i, u := range ids {
		num[u] = i
		for g := range groups[u] {
			gr[i] = g
		}
	}
	var v string
	switch p.Aggregation {
	case experiment.Count:
		v = "toFloat64(count())"
	case experiment.Binary:
		v = "toFloat64(1)"
	default:
		v = "sum(value)" // sumKahan states crash 18.16 when sent between shards
	}
	var cells []metric.PanelCell
	sql := fmt.Sprintf("SELECT unit, intDiv(ts - %d, %d) AS k, %s FROM %s WHERE %s GROUP BY unit, k", p.FromMicros, p.PeriodMicros, v, e.ev, rangeWhere)
	if err := e.query(ctx, 0, sql, func(r driver.Rows) error {
		var u string
		var k int64
		var x float64
		if err := r.Scan(&u, &k, &x); err != nil {
			return err
		}
		if n, ok := num[u]; ok {
			cells = append(cells, metric.PanelCell{Unit: n, Period: int(k), Value: x})
		}
		return nil
	}); err != nil {
		return nil, err
	}
	return metric.AssemblePanel(p, ids, gr, overlap, cells)
}

// Freshness implements metric.Engine, over the global tables.
func (e *Engine) Freshness(ctx context.Context, pop metric.Population) (metric.Freshness, error) {
	var f metric.Freshness
	where, _ := popWhere(pop)
	at := func(us int64) *time.Time {
		t := time.UnixMicro(us).UTC()
		return &t
	}
	one := func(sql string, set func(n uint64, a, b int64)) error {
		return e.query(ctx, 0, sql, func(r driver.Rows) error {
			var n uint64
			var a, b int64
			if err := r.Scan(&n, &a, &b); err != nil {
				return err
			}
			if n > 0 {
				set(n, a, b)
			}
			return nil
		})
	}
	if err := one(fmt.Sprintf("SELECT count(), min(ts), max(ts) FROM %s WHERE %s", e.exp, where), func(_ uint64, a, b int64) {
		f.FirstExposure, f.LatestExposure = at(a), at(b)
	}); err != nil {
		return f, err
	}
	cut := "1"
	if !pop.Until.IsZero() {
		cut = "ts < " + strconv.FormatInt(pop.Until.UnixMicro(), 10)
	}
	if err := one(fmt.Sprintf("SELECT count(), max(ts), max(ts) FROM %s WHERE %s", e.ev, cut), func(_ uint64, a, _ int64) {
		f.LatestEvent = at(a)
	}); err != nil {
		return f, err
	}
	err := one(fmt.Sprintf("SELECT count(), max(ts), max(ts) FROM %s WHERE %s AND unit GLOBAL IN (SELECT unit FROM %s WHERE %s)", e.ev, cut, e.exp, where), func(_ uint64, a, _ int64) {
		f.LatestUnitEvent = at(a)
	})
	return f, err
}

// neumaier is compensated summation, as the reference engine's.
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
