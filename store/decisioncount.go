package store

import (
	"context"
	"strings"
	"time"
)

// CountDecisions counts the stored decisions of unit in journey key with from <
// ts ≤ to whose reason is none of skipReasons (the frequency cap of a journey
// skips the decisions that fatigue itself held back). The decision log commits
// before a decision is answered, so every answered decision counts.
func (db *DB) CountDecisions(ctx context.Context, key, unit string, from, to time.Time, skipReasons []string) (int64, error) {
	q := `SELECT count(*) FROM journey_decisions WHERE journey = ? AND unit = ? AND ts > ? AND ts <= ?`
	args := []any{key, unit, from.UTC(), to.UTC()}
	if len(skipReasons) > 0 {
		q += ` AND coalesce(reason, '') NOT IN (?` + strings.Repeat(", ?", len(skipReasons)-1) + `)`
		for _, r := range skipReasons {
			args = append(args, r)
		}
	}
	var n int64
	err := db.db.QueryRowContext(ctx, q, args...).Scan(&n)
	return n, internal("store.CountDecisions", err)
}
