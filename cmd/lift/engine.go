package main

import (
	"context"
	"flag"
	"github.com/liftlab/lift/api"
	"log/slog"
	"strings"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/metric/clickhouse"
	"github.com/liftlab/lift/results"
	"github.com/liftlab/lift/store"
)

// engineFlags choose the metric engine of "lift serve" and "lift report":
// DuckDB over the store's own file (the default) or ClickHouse
// (docs/store.md). A switch, not a registry: there are two engines.
type engineFlags struct {
	engine, addrs, cluster, events, columns string
}

func (f *engineFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.engine, "engine", "duckdb", "metric engine: duckdb (the store's file) or clickhouse (--clickhouse servers; exposures and events are forwarded from the store)")
	fs.StringVar(&f.addrs, "clickhouse", "", "ClickHouse servers for --engine clickhouse: comma-separated native-protocol `host:port` addresses, one per shard in the cluster's order")
	fs.StringVar(&f.cluster, "clickhouse-cluster", "", "the remote_servers `name` of the cluster (required with several shards): Lift creates its Distributed tables over it")
	fs.StringVar(&f.events, "clickhouse-events", "", "read events from the team's own table instead of forwarding Lift's: `LOCAL[,DISTRIBUTED]` table names (the Distributed one sharded by cityHash64 of the unit)")
	fs.StringVar(&f.columns, "clickhouse-event-columns", "", "with --clickhouse-events: `col=expr;…` for Lift's columns event_id, unit, type, ts (Int64 µs), value (Float64), e.g. unit=user_id;ts=toInt64(toUnixTimestamp(at))*1000000")
}

func engineError(op, field, format string, args ...any) error {
	return experiment.E(op, experiment.Invalid, experiment.Field(field), experiment.Errorf(format, args...))
}

// warehouse is an open ClickHouse engine and its forwarder.
type warehouse struct {
	engine    *clickhouse.Engine
	forwarder *clickhouse.Forwarder
}

// open returns the results service over db with the chosen engine; with
// ClickHouse also the warehouse (nil for DuckDB), which the caller closes.
func (f *engineFlags) open(ctx context.Context, op string, db *store.DB, logger *slog.Logger) (*results.Service, *warehouse, error) {
	switch f.engine {
	case "duckdb", "":
		for _, x := range []struct{ flag, v string }{{"--clickhouse", f.addrs}, {"--clickhouse-cluster", f.cluster}, {"--clickhouse-events", f.events}, {"--clickhouse-event-columns", f.columns}} {
			if x.v != "" {
				return nil, nil, engineError(op, x.flag, "is for --engine clickhouse")
			}
		}
		return api.ResultsOver(db), nil, nil
	case "clickhouse":
	default:
		return nil, nil, engineError(op, "--engine", "must be duckdb or clickhouse, got %q", f.engine)
	}
	var shards []string
	for a := range strings.SplitSeq(f.addrs, ",") {
		if a = strings.TrimSpace(a); a != "" {
			if !strings.Contains(a, ":") {
				return nil, nil, engineError(op, "--clickhouse", "%q is not host:port (the native protocol's port, 9000 by default)", a)
			}
			shards = append(shards, a)
		}
	}
	if len(shards) == 0 {
		return nil, nil, engineError(op, "--clickhouse", "--engine clickhouse needs the servers' addresses")
	}
	if len(shards) > 1 && f.cluster == "" {
		return nil, nil, engineError(op, "--clickhouse-cluster", "%d shards need the cluster's remote_servers name", len(shards))
	}
	o := clickhouse.Options{Shards: shards}
	if f.events != "" {
		local, dist, _ := strings.Cut(f.events, ",")
		t := &clickhouse.EventsTable{Local: strings.TrimSpace(local), Distributed: strings.TrimSpace(dist), Columns: map[string]string{}}
		for kv := range strings.SplitSeq(f.columns, ";") {
			if kv = strings.TrimSpace(kv); kv == "" {
				continue
			}
			k, v, ok := strings.Cut(kv, "=")
			if !ok || strings.TrimSpace(v) == "" {
				return nil, nil, engineError(op, "--clickhouse-event-columns", "%q is not col=expr", kv)
			}
			t.Columns[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
		o.Events = t
	} else if f.columns != "" {
		return nil, nil, engineError(op, "--clickhouse-event-columns", "maps the columns of --clickhouse-events, which is not set")
	}
	eng, err := clickhouse.Open(ctx, o)
	if err != nil {
		if experiment.KindOf(err) == experiment.Invalid {
			return nil, nil, experiment.E(op, experiment.Field("--clickhouse-events"), err)
		}
		return nil, nil, experiment.E(op, experiment.Field("--clickhouse"), err)
	}
	if err := eng.CreateTables(ctx, f.cluster); err != nil {
		eng.Close()
		return nil, nil, experiment.E(op, experiment.Field("--clickhouse"), err)
	}
	w := &warehouse{engine: eng, forwarder: clickhouse.NewForwarder(db, eng, clickhouse.ForwardOptions{Events: o.Events == nil, Logger: logger})}
	return results.New(db, db, eng, db.Now), w, nil
}

func (w *warehouse) Close() error {
	if w == nil {
		return nil
	}
	return w.engine.Close()
}

// forwardTask forwards the store's committed rows to ClickHouse for as long
// as "lift serve" runs, and once more after the last requests have drained.
func forwardTask(w *warehouse, logger *slog.Logger) backgroundTask {
	return backgroundTask{name: "clickhouse forwarding", run: func(ctx context.Context) error {
		w.forwarder.Run(ctx)
		final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if nx, ne, err := w.forwarder.Sync(final); err != nil {
			logger.Warn("last forwarding to ClickHouse failed; the rows are sent at the next start", "err", err)
		} else if nx+ne > 0 {
			logger.Info("forwarded to ClickHouse at shutdown", "exposures", nx, "events", ne)
		}
		return nil
	}}
}
