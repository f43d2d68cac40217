package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"strings"
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

// eraseBatch is the most erasures applied by one mutation per table and shard.
const eraseBatch = 500

// Erase applies, in ClickHouse, the erasures the store has made since rows
// were forwarded (Source.PendingErasures), and returns how many it finished.
// For each batch of up to 500, on every shard, it deletes the rows of
// exposures_local and events_local under the raw ids or the pseudonyms (one
// ALTER TABLE … DELETE per table, a mutation, which ClickHouse applies by
// rewriting the parts holding such rows, waited for in system.mutations until
// done or ctx ends), then inserts the store's rows of those ids up to the
// cursors into the shards that hold them (Shard): the pseudonyms' exposures,
// and what may have committed under an id after its erasure, so ClickHouse
// mirrors the store. Only then is each erasure finished in the store
// (FinishErasure), which removes the last copy of the raw id. A failure at any
// step leaves them pending, and the next attempt starts from the deletion
// again: no row is lost or stored twice. Sync calls it once the tables are
// forwarded up to the watermarks, so that no shard holds a row above the
// cursors. Errors and logs never carry a raw id.
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
	// The shards' largest seqs may drop; read them again when needed.
	defer clear(f.have)
	done := 0
	for len(pend) > 0 {
		b := pend[:min(eraseBatch, len(pend))]
		pend = pend[len(b):]
		reps, err := f.eraseBatch(ctx, b, xcur, ecur)
		if err != nil {
			return done, err
		}
		for k, p := range b {
			r := reps[k]
			if err := f.src.FinishErasure(ctx, p.Pseudonym, p.RequestedAt, r); err != nil {
				return done, err
			}
			done++
			f.o.Logger.Info("erased a unit in ClickHouse", "pseudonym", p.Pseudonym, "exposures_deleted", r.ExposuresDeleted,
				"events_deleted", r.EventsDeleted, "exposures_pseudonymized", r.ExposuresPseudonymized)
		}
	}
	return done, nil
}

func (f *Forwarder) eraseBatch(ctx context.Context, b []experiment.PendingErasure, xcur, ecur int64) ([]*ErasureReport, error) {
	n := len(f.e.shards)
	reps := make([]*ErasureReport, len(b))
	of := map[string]int{} // raw id → its erasure
	var raw, ids []string
	for k, p := range b {
		reps[k] = &ErasureReport{Shards: n}
		if f.e.team != "" {
			reps[k].TeamEvents = fmt.Sprintf("not erased: %s is the team's table, which Lift only reads", f.e.team)
		}
		of[p.Unit] = k
		raw, ids = append(raw, p.Unit), append(ids, p.Unit, p.Pseudonym)
	}
	tables := []string{ExposuresLocal, EventsLocal}
	type found struct {
		unit string
		n    uint64
	}
	deleted := make([][2][]found, n)
	err := f.e.everyShard(ctx, func(ctx context.Context, i int) error {
		for j, t := range tables {
			err := f.e.quiet(ctx, i, "count rows to erase", "SELECT unit, count() FROM "+t+" WHERE unit IN "+list(raw)+" GROUP BY unit", func(r driver.Rows) error {
				var x found
				if err := r.Scan(&x.unit, &x.n); err != nil {
					return err
				}
				deleted[i][j] = append(deleted[i][j], x)
				return nil
			})
			if err != nil {
				return err
			}
		}
		for _, t := range tables {
			q := "ALTER TABLE " + t + " DELETE WHERE unit IN " + list(ids)
			if f.e.log != nil {
				f.e.log(i, true, q)
			}
			if err := f.e.shards[i].Exec(ctx, q); err != nil {
				return wrap("erase: delete from "+t, scrub(err, ids))
			}
		}
		return f.waitMutations(ctx, i, tables)
	})
	if err != nil {
		return nil, err
	}
	for i := range deleted {
		for _, x := range deleted[i][0] {
			reps[of[x.unit]].ExposuresDeleted += x.n
		}
		for _, x := range deleted[i][1] {
			reps[of[x.unit]].EventsDeleted += x.n
		}
	}
	// The store's rows of every id, gathered per shard: one block each.
	xseqs, eseqs := make([][]int64, n), make([][]int64, n)
	xs, evs := make([][]experiment.Exposure, n), make([][]experiment.Event, n)
	for k, p := range b {
		for _, u := range []string{p.Pseudonym, p.Unit} {
			h := Shard(u, n)
			seqs, rows, err := f.src.UnitExposures(ctx, u, xcur)
			if err != nil {
				return nil, err
			}
			xseqs[h], xs[h] = append(xseqs[h], seqs...), append(xs[h], rows...)
			if u == p.Pseudonym {
				reps[k].ExposuresPseudonymized = len(rows)
			}
			if !f.o.Events {
				continue
			}
			seqs, ers, err := f.src.UnitEvents(ctx, u, ecur)
			if err != nil {
				return nil, err
			}
			eseqs[h], evs[h] = append(eseqs[h], seqs...), append(evs[h], ers...)
		}
	}
	err = f.e.everyShard(ctx, func(ctx context.Context, i int) error {
		if len(xs[i]) > 0 {
			if err := f.insertExposures(ctx, i, xseqs[i], xs[i], indices(len(xs[i]))); err != nil {
				return scrub(err, ids)
			}
		}
		if len(evs[i]) > 0 {
			if err := f.insertEvents(ctx, i, eseqs[i], evs[i], indices(len(evs[i]))); err != nil {
				return scrub(err, ids)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return reps, nil
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

// quiet is queryOn for a query naming erased ids: its error says what, not
// the query.
func (e *Engine) quiet(ctx context.Context, i int, what, q string, scan func(driver.Rows) error) error {
	if e.log != nil {
		e.log(i, true, q)
	}
	rows, err := e.shards[i].Query(ctx, q)
	if err != nil {
		return wrap(what, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return wrap(what, err)
		}
	}
	return wrap(what, rows.Err())
}

// scrub is err with every id in its message replaced: a server's message
// may quote the query.
func scrub(err error, ids []string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := msg
	for _, id := range ids {
		clean = strings.ReplaceAll(clean, id, "(erased id)")
	}
	if clean == msg {
		return err
	}
	return experiment.E(experiment.KindOf(err), errors.New(clean))
}

func indices(n int) []int {
	ix := make([]int, n)
	for i := range ix {
		ix[i] = i
	}
	return ix
}
