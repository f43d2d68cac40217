package clickhouse

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/liftlab/lift/experiment"
)

// ErasureReport is what the forwarder did in ClickHouse for one erased unit:
// the after of its audit entry ("unit.erase.clickhouse", under the pseudonym).
// It never names the raw id.
type ErasureReport struct {
	Shards int `json:"shards"`
	// ExposuresDeleted and EventsDeleted are the rows under the raw id the
	// last attempt found and deleted, over every shard (an earlier attempt
	// that crashed may have deleted some already).
	ExposuresDeleted uint64 `json:"exposures_deleted"`
	EventsDeleted    uint64 `json:"events_deleted"`
	// ExposuresPseudonymized are the exposure rows now under the pseudonym,
	// on its shard: the store's, up to the forwarder's cursor.
	ExposuresPseudonymized int `json:"exposures_pseudonymized"`
	// TeamEvents says what Lift did with the team's own events table
	// (Options.Events): nothing, it only reads it.
	TeamEvents string `json:"team_events,omitempty"`
}

// Erase applies, in ClickHouse, the erasures the store has made since rows
// were forwarded (Source.PendingErasures), and returns how many it finished.
// For each, on every shard, it deletes the rows of exposures_local and
// events_local under the raw id or the pseudonym (ALTER TABLE … DELETE, a
// mutation, waited for in system.mutations until done or ctx ends), then
// inserts the store's rows of both ids up to the cursors into the shards that
// hold them (Shard): the pseudonym's exposures, and what may have committed
// under the id after the erasure, so ClickHouse mirrors the store. Only then
// is the erasure finished in the store (FinishErasure), which removes the
// last copy of the raw id. A failure at any step leaves it pending, and the
// next attempt starts from the deletion again: no row is lost or stored twice.
// Sync calls it once the tables are forwarded up to the watermarks, so that no
// shard holds a row above the cursors.
//
// The team's own events table (Options.Events) is the team's: Lift only reads
// it, deletes nothing there, and says so in the report.
func (f *Forwarder) Erase(ctx context.Context) (int, error) {
	pend, err := f.src.PendingErasures(ctx)
	if err != nil || len(pend) == 0 {
		return 0, err
	}
	xcur, err := f.src.ForwardCursor(ctx, ExposuresCursor)
	if err != nil {
		return 0, err
	}
	var ecur int64
	if f.o.Events {
		if ecur, err = f.src.ForwardCursor(ctx, EventsCursor); err != nil {
			return 0, err
		}
	}
	for k, p := range pend {
		r, err := f.eraseUnit(ctx, p, xcur, ecur)
		if err != nil {
			return k, err
		}
		if err := f.src.FinishErasure(ctx, p.Pseudonym, p.RequestedAt, r); err != nil {
			return k, err
		}
		f.o.Logger.Info("erased a unit in ClickHouse", "pseudonym", p.Pseudonym, "exposures_deleted", r.ExposuresDeleted,
			"events_deleted", r.EventsDeleted, "exposures_pseudonymized", r.ExposuresPseudonymized)
	}
	// The shards' largest seqs may have dropped; read them again when needed.
	clear(f.have)
	return len(pend), nil
}

func (f *Forwarder) eraseUnit(ctx context.Context, p experiment.PendingErasure, xcur, ecur int64) (*ErasureReport, error) {
	n := len(f.e.shards)
	r := &ErasureReport{Shards: n}
	if f.e.team != "" {
		r.TeamEvents = fmt.Sprintf("not erased: %s is the team's table, which Lift only reads", f.e.team)
	}
	ids := list([]string{p.Unit, p.Pseudonym})
	tables := []string{ExposuresLocal, EventsLocal}
	deleted := make([][2]uint64, n)
	err := f.e.everyShard(ctx, func(ctx context.Context, i int) error {
		for j, t := range tables {
			if err := f.e.queryOn(ctx, i, true, "SELECT count() FROM "+t+" WHERE unit = "+lit(p.Unit), func(r driver.Rows) error {
				return r.Scan(&deleted[i][j])
			}); err != nil {
				return err
			}
		}
		for _, t := range tables {
			if err := f.e.shards[i].Exec(ctx, "ALTER TABLE "+t+" DELETE WHERE unit IN "+ids); err != nil {
				return wrap("erase", err)
			}
		}
		return f.waitMutations(ctx, i, tables)
	})
	if err != nil {
		return nil, err
	}
	for i := range deleted {
		r.ExposuresDeleted += deleted[i][0]
		r.EventsDeleted += deleted[i][1]
	}
	for _, u := range []string{p.Pseudonym, p.Unit} {
		seqs, xs, err := f.src.UnitExposures(ctx, u, xcur)
		if err != nil {
			return nil, err
		}
		if len(xs) > 0 {
			if err := f.insertExposures(ctx, Shard(u, n), seqs, xs, indices(len(xs))); err != nil {
				return nil, err
			}
		}
		if u == p.Pseudonym {
			r.ExposuresPseudonymized = len(xs)
		}
		if !f.o.Events {
			continue
		}
		seqs, evs, err := f.src.UnitEvents(ctx, u, ecur)
		if err != nil {
			return nil, err
		}
		if len(evs) > 0 {
			if err := f.insertEvents(ctx, Shard(u, n), seqs, evs, indices(len(evs))); err != nil {
				return nil, err
			}
		}
	}
	return r, nil
}

// waitMutations waits until shard i has applied every mutation of tables
// (ClickHouse runs them in the background), polling system.mutations.
func (f *Forwarder) waitMutations(ctx context.Context, i int, tables []string) error {
	q := "SELECT count() FROM system.mutations WHERE database = currentDatabase() AND table IN " + list(tables) + " AND is_done = 0"
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 500*time.Millisecond) {
		var left uint64
		if err := f.e.queryOn(ctx, i, true, q, func(r driver.Rows) error { return r.Scan(&left) }); err != nil {
			return err
		}
		if left == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return experiment.E(experiment.Unavailable, fmt.Errorf("clickhouse: shard %d: %d mutations still running: %w", i, left, ctx.Err()))
		case <-time.After(wait):
		}
	}
}

func indices(n int) []int {
	ix := make([]int, n)
	for i := range ix {
		ix[i] = i
	}
	return ix
}
