package clickhouse

import (
	"context"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/liftlab/lift/experiment"
)

// Source is where a Forwarder reads committed rows and keeps its cursors: the
// Lift store (store.DB). Every row has a number (seq) in commit order, and a
// watermark below which no row can still commit.
type Source interface {
	ExposureWatermark() int64
	EventWatermark() int64
	ExposuresAfter(ctx context.Context, after, upto int64, limit int) ([]int64, []experiment.Exposure, error)
	EventsAfter(ctx context.Context, after, upto int64, limit int) ([]int64, []experiment.Event, error)
	ForwardCursor(ctx context.Context, target string) (int64, error)
	SetForwardCursor(ctx context.Context, target string, seq int64) error

	// PendingErasures are the units erased in the store (their rows there
	// under a pseudonym, or gone) whose forwarded rows still carry the id.
	PendingErasures(ctx context.Context) ([]experiment.PendingErasure, error)
	// UnitExposures and UnitEvents are unit's rows with seq ≤ upto.
	UnitExposures(ctx context.Context, unit string, upto int64) ([]int64, []experiment.Exposure, error)
	UnitEvents(ctx context.Context, unit string, upto int64) ([]int64, []experiment.Event, error)
	// FinishErasure records that the erasure of pseudonym requested at
	// requested is done, with report as its audit entry.
	FinishErasure(ctx context.Context, pseudonym string, requested time.Time, report any) error
}

// ForwardOptions configure a Forwarder.
type ForwardOptions struct {
	// Events also forwards the store's events (false when the engine reads
	// the team's own events table, Options.Events).
	Events bool
	// Batch is the most rows sent per shard and table at once (default
	// 50,000; one INSERT block, which a MergeTree stores whole or not at all).
	Batch int
	// Every is how often Run forwards what has committed since (default 1 s).
	Every time.Duration
	// EraseWait bounds how long one Sync waits for its erasures' mutations
	// (default 1 minute): a mutation ClickHouse cannot apply (18.16 retries a
	// failing one forever, and later mutations of the table wait behind it)
	// then leaves the erasures pending and the error says so, instead of
	// stopping the forwarding of new rows.
	EraseWait time.Duration
	Logger    *slog.Logger // default slog.Default()
}

// Forwarder copies the rows the Lift store has committed into the local
// tables of the shards that hold their units (Shard), as Prometheus's fanout
// storage feeds a secondary from a primary: the store stays the record, and
// an exposure is acknowledged once the store has committed it, whether or not
// ClickHouse is up. Each table's cursor (the highest seq ClickHouse holds)
// lives in the store and moves only after every shard has taken the rows, so
// every row is sent at least once, across restarts. And no row is stored
// twice: rows are sent in seq order, each shard's batch is one INSERT block,
// and before sending, the forwarder reads each shard's largest seq and skips
// the rows that shard already holds (a crash after some shards took a batch
// and before the cursor moved).
type Forwarder struct {
	src Source
	e   *Engine
	o   ForwardOptions
	// have is, per table, each shard's largest seq; nil until read.
	have map[string][]int64
}

// NewForwarder returns a forwarder from src into e's shards.
func NewForwarder(src Source, e *Engine, o ForwardOptions) *Forwarder {
	if o.Batch <= 0 {
		o.Batch = 50_000
	}
	if o.Every <= 0 {
		o.Every = time.Second
	}
	if o.EraseWait <= 0 {
		o.EraseWait = time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Forwarder{src: src, e: e, o: o, have: map[string][]int64{}}
}

// Cursor names in the store.
const (
	ExposuresCursor = "clickhouse:exposures"
	EventsCursor    = "clickhouse:events"
)

// Run forwards every o.Every until ctx ends; a failure (ClickHouse down) is
// logged and retried at the next tick, from the cursor.
func (f *Forwarder) Run(ctx context.Context) {
	t := time.NewTicker(f.o.Every)
	defer t.Stop()
	failing := false
	for {
		if _, _, err := f.Sync(ctx); err != nil && ctx.Err() == nil {
			if !failing {
				f.o.Logger.Warn("forwarding to ClickHouse failed; the rows stay in the store and are sent when it answers", "err", err)
			}
			failing = true
		} else if failing && err == nil {
			f.o.Logger.Info("forwarding to ClickHouse resumed")
			failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sync forwards every row committed up to the watermarks now, then applies
// the pending erasures (Erase), and returns how many rows it sent.
func (f *Forwarder) Sync(ctx context.Context) (exposures, events int, err error) {
	exposures, err = f.table(ctx, ExposuresCursor, ExposuresLocal, f.src.ExposureWatermark(), f.exposures)
	if err != nil {
		return exposures, 0, err
	}
	if f.o.Events {
		if events, err = f.table(ctx, EventsCursor, EventsLocal, f.src.EventWatermark(), f.events); err != nil {
			return exposures, events, err
		}
	}
	ectx, cancel := context.WithTimeout(ctx, f.o.EraseWait)
	defer cancel()
	_, err = f.Erase(ectx)
	return exposures, events, err
}

// page reads the rows after cursor up to upto (at most limit) and sends them
// to the shards, skipping on shard i the rows with seq ≤ have[i]; it returns
// the rows read and their last seq.
type page func(ctx context.Context, cursor, upto int64, have []int64) (n int, last int64, err error)

func (f *Forwarder) table(ctx context.Context, cursor, local string, upto int64, send page) (int, error) {
	cur, err := f.src.ForwardCursor(ctx, cursor)
	if err != nil {
		return 0, err
	}
	if cur == 0 {
		// The cursor exists before the first row is read, so that an erasure
		// from now on is recorded for this forwarder (store.EraseUnit).
		if err := f.src.SetForwardCursor(ctx, cursor, 0); err != nil {
			return 0, err
		}
	}
	total := 0
	for cur < upto {
		have, err := f.shardMax(ctx, local)
		if err != nil {
			return total, err
		}
		n, last, err := send(ctx, cur, upto, have)
		if err != nil {
			delete(f.have, local) // read again: some shards may have taken the batch
			return total, err
		}
		if n == 0 {
			last = upto // the rest up to the watermark are numbers no row took
		}
		if err := f.src.SetForwardCursor(ctx, cursor, last); err != nil {
			return total, err
		}
		total += n
		cur = last
	}
	return total, nil
}

// shardMax is every shard's largest seq in table, read once and then kept up
// to date by the sends.
func (f *Forwarder) shardMax(ctx context.Context, table string) ([]int64, error) {
	if h, ok := f.have[table]; ok {
		return h, nil
	}
	h := make([]int64, len(f.e.shards))
	err := f.e.everyShard(ctx, func(ctx context.Context, i int) error {
		return f.e.queryOn(ctx, i, true, "SELECT max(seq) FROM "+table, func(r driver.Rows) error { return r.Scan(&h[i]) })
	})
	if err != nil {
		return nil, err
	}
	f.have[table] = h
	return h, nil
}

func (f *Forwarder) exposures(ctx context.Context, cursor, upto int64, have []int64) (int, int64, error) {
	seqs, xs, err := f.src.ExposuresAfter(ctx, cursor, upto, f.o.Batch)
	if err != nil || len(xs) == 0 {
		return 0, 0, err
	}
	n := len(f.e.shards)
	err = f.e.everyShard(ctx, func(ctx context.Context, i int) error {
		var mine []int
		for k := range xs {
			if seqs[k] > have[i] && Shard(xs[k].Unit, n) == i {
				mine = append(mine, k)
			}
		}
		if len(mine) == 0 {
			return nil
		}
		if err := f.insertExposures(ctx, i, seqs, xs, mine); err != nil {
			return err
		}
		have[i] = seqs[mine[len(mine)-1]]
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	return len(xs), seqs[len(seqs)-1], nil
}

// insertExposures inserts the rows xs[k], k in mine, into shard i's local
// table, as one block.
func (f *Forwarder) insertExposures(ctx context.Context, i int, seqs []int64, xs []experiment.Exposure, mine []int) error {
	b, err := f.e.shards[i].PrepareBatch(ctx, "INSERT INTO "+ExposuresLocal+" (experiment, unit, variant, ts, in_holdout, holdout_version, seq)")
	if err != nil {
		return wrap("forward exposures", err)
	}
	for _, k := range mine {
		x := &xs[k]
		h := uint8(0)
		if x.InHoldout {
			h = 1
		}
		if err := b.Append(x.Experiment, x.Unit, x.Variant, x.TS.UnixMicro(), h, int64(x.HoldoutVersion), seqs[k]); err != nil {
			b.Abort()
			return wrap("forward exposures", err)
		}
	}
	return wrap("forward exposures", b.Send())
}

func (f *Forwarder) events(ctx context.Context, cursor, upto int64, have []int64) (int, int64, error) {
	seqs, evs, err := f.src.EventsAfter(ctx, cursor, upto, f.o.Batch)
	if err != nil || len(evs) == 0 {
		return 0, 0, err
	}
	n := len(f.e.shards)
	err = f.e.everyShard(ctx, func(ctx context.Context, i int) error {
		var mine []int
		for k := range evs {
			if seqs[k] > have[i] && Shard(evs[k].Unit, n) == i {
				mine = append(mine, k)
			}
		}
		if len(mine) == 0 {
			return nil
		}
		if err := f.insertEvents(ctx, i, seqs, evs, mine); err != nil {
			return err
		}
		have[i] = seqs[mine[len(mine)-1]]
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	return len(evs), seqs[len(seqs)-1], nil
}

// insertEvents inserts the rows evs[k], k in mine, into shard i's local
// table, as one block.
func (f *Forwarder) insertEvents(ctx context.Context, i int, seqs []int64, evs []experiment.Event, mine []int) error {
	b, err := f.e.shards[i].PrepareBatch(ctx, "INSERT INTO "+EventsLocal+" (event_id, unit, type, ts, value, seq)")
	if err != nil {
		return wrap("forward events", err)
	}
	for _, k := range mine {
		v := &evs[k]
		if err := b.Append(v.EventID, v.Unit, v.Type, v.TS.UnixMicro(), v.Value, seqs[k]); err != nil {
			b.Abort()
			return wrap("forward events", err)
		}
	}
	return wrap("forward events", b.Send())
}
