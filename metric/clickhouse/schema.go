package clickhouse

import (
	"context"
	"fmt"

	"github.com/liftlab/lift/experiment"
)

// The tables the engine reads: exposures_local and events_local on every
// server, and exposures and events, Distributed over the cluster by
// cityHash64(unit). Times are Int64 microseconds since the Unix epoch (UTC);
// variant is ” for a holdout exposure; in_holdout is 0 or 1; seq is the row's
// number in the Lift store that forwarded it (0 for rows loaded otherwise).
const (
	ExposuresLocal = "exposures_local"
	EventsLocal    = "events_local"
	Exposures      = "exposures"
	Events         = "events"
)

// Schema is the DDL that creates the tables on one server of cluster (the
// remote_servers entry naming every shard), if they are absent.
func Schema(cluster string) []string {
	return []string{
		`CREATE TABLE IF NOT EXISTS ` + ExposuresLocal + ` (experiment String, unit String, variant String, ts Int64, in_holdout UInt8, holdout_version Int64, seq Int64)
			ENGINE = MergeTree ORDER BY (experiment, unit, ts)`,
		`CREATE TABLE IF NOT EXISTS ` + EventsLocal + ` (event_id String, unit String, type String, ts Int64, value Float64, seq Int64)
			ENGINE = MergeTree ORDER BY (type, unit, ts)`,
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s AS %s ENGINE = Distributed(%s, default, %s, cityHash64(unit))`, Exposures, ExposuresLocal, cluster, ExposuresLocal),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s AS %s ENGINE = Distributed(%s, default, %s, cityHash64(unit))`, Events, EventsLocal, cluster, EventsLocal),
	}
}

// CreateTables creates Lift's tables (Schema) on every shard, if absent; with
// one server and no cluster only the local tables, which the engine then reads.
func (e *Engine) CreateTables(ctx context.Context, cluster string) error {
	ddl := Schema(cluster)
	if cluster == "" {
		if len(e.shards) > 1 {
			return experiment.E(experiment.Invalid, experiment.Field("cluster"), experiment.Errorf("%d shards need the cluster's remote_servers name", len(e.shards)))
		}
		ddl = ddl[:2]
	}
	return e.everyShard(ctx, func(ctx context.Context, i int) error {
		for _, q := range ddl {
			if err := e.shards[i].Exec(ctx, q); err != nil {
				return wrap("create tables", err)
			}
		}
		return nil
	})
}
