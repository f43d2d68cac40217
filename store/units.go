package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/liftlab/lift/experiment"
)

// Unit attributes: a flat JSON object per unit (plan, country, tenure_days, ...)
// that uplift models use as features. An upsert merges the attributes sent into
// those stored, as a JSON merge patch (RFC 7396): a key sent replaces the stored
// value, a key sent as null removes it, keys not sent are kept.

// MaxAttributeName is the longest attribute name accepted, in bytes.
const MaxAttributeName = 128

// UnitAttributes are the attributes of one unit. Values are numbers (float64),
// strings, booleans, or nil to remove the attribute.
type UnitAttributes struct {
	Unit       string         `json:"unit"`
	Attributes map[string]any `json:"attributes"`
}

// upsertChunk is the number of units written by one INSERT statement.
const upsertChunk = 500

// UpsertUnitAttributes merges the attributes of each unit into the stored ones, all
// units in one transaction: either every unit is written or none is. A unit named
// twice in the batch gets both patches, in order. It returns the number of distinct
// units written. Invalid, naming units[i].unit or units[i].attributes.NAME, when a
// unit is empty or a value is not a finite number, a string, a boolean or null.
func (db *DB) UpsertUnitAttributes(ctx context.Context, units []UnitAttributes) (int, error) {
	const op = "store.UpsertUnitAttributes"
	patches := map[string]map[string]any{}
	var order []string
	for i, u := range units {
		if err := checkUnitAttributes(i, u); err != nil {
			return 0, experiment.E(op, err)
		}
		p, ok := patches[u.Unit]
		if !ok {
			p = map[string]any{}
			patches[u.Unit] = p
			order = append(order, u.Unit)
		}
		for k, v := range u.Attributes {
			p[k] = v
		}
	}
	if len(order) == 0 {
		return 0, nil
	}
	now := db.now()
	err := db.tx(ctx, func(tx *sql.Tx) error {
		for start := 0; start < len(order); start += upsertChunk {
			chunk := order[start:min(start+upsertChunk, len(order))]
			args := make([]any, 1, 2*len(chunk)+1)
			args[0] = now // the SELECT's first placeholder
			rows := make([]string, len(chunk))
			for k, unit := range chunk {
				doc, err := json.Marshal(patches[unit])
				if err != nil {
					return err
				}
				rows[k] = "(?, ?)"
				args = append(args, unit, string(doc))
			}
			// The merge is computed in the SELECT, so that a null in the patch
			// removes a stored key and is never stored itself.
			q := `INSERT INTO unit_attributes (unit, attrs, updated_at)
SELECT v.unit, json_merge_patch(coalesce(a.attrs, '{}'::JSON), v.patch::JSON), ?::TIMESTAMPTZ
FROM (VALUES ` + strings.Join(rows, ", ") + `) v(unit, patch) LEFT JOIN unit_attributes a ON a.unit = v.unit
ON CONFLICT (unit) DO UPDATE SET attrs = excluded.attrs, updated_at = excluded.updated_at`
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				return fmt.Errorf("units %d-%d: %w", start, start+len(chunk)-1, err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, internal(op, err)
	}
	return len(order), nil
}

// checkUnitAttributes validates entry i of a batch.
func checkUnitAttributes(i int, u UnitAttributes) error {
	field := func(f string) experiment.Field { return experiment.Field(fmt.Sprintf("units[%d].%s", i, f)) }
	if u.Unit == "" {
		return experiment.E(experiment.Invalid, field("unit"), experiment.Errorf("is required"))
	}
	if p := experiment.IdentProblem(u.Unit); p != "" {
		return experiment.E(experiment.Invalid, field("unit"), experiment.Errorf("%s", p))
	}
	names := make([]string, 0, len(u.Attributes))
	for k := range u.Attributes {
		names = append(names, k)
	}
	sort.Strings(names) // report the first bad attribute deterministically
	for _, k := range names {
		if k == "" || len(k) > MaxAttributeName || experiment.IdentProblem(k) != "" {
			return experiment.E(experiment.Invalid, field("attributes"), experiment.Errorf("attribute names must be 1-%d bytes of UTF-8 without control characters, got %q", MaxAttributeName, k))
		}
		switch v := u.Attributes[k].(type) {
		case nil, string, bool:
		case float64:
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return experiment.E(experiment.Invalid, field("attributes."+k), experiment.Errorf("must be a finite number, got %g", v))
			}
		default:
			return experiment.E(experiment.Invalid, field("attributes."+k), experiment.Errorf("must be a number, a string, a boolean or null, got %T", v))
		}
	}
	return nil
}

// manyUnits is the number of units above which GetUnitAttributes scans the
// whole table rather than look the units up.
const manyUnits = 1000

// GetUnitAttributes returns the stored attributes of the named units; units
// without attributes are absent from the map.
func (db *DB) GetUnitAttributes(ctx context.Context, units []string) (map[string]map[string]any, error) {
	const op = "store.GetUnitAttributes"
	out := map[string]map[string]any{}
	if len(units) == 0 {
		return out, nil
	}
	// Many units (a report's segments read every analyzed unit's): one
	// scan of the table, the units kept in Go, instead of binding them all
	// as a parameter, which costs more than the scan.
	var want map[string]bool
	var rows *sql.Rows
	var err error
	if len(units) > manyUnits {
		want = make(map[string]bool, len(units))
		for _, u := range units {
			want[u] = true
		}
		rows, err = db.db.QueryContext(ctx, `SELECT unit, attrs::VARCHAR FROM unit_attributes`)
	} else {
		rows, err = db.db.QueryContext(ctx, `SELECT unit, attrs::VARCHAR FROM unit_attributes WHERE unit IN (SELECT unnest(?::VARCHAR[]))`, units)
	}
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	for rows.Next() {
		var unit string
		var doc jsonText
		if err := rows.Scan(&unit, &doc); err != nil {
			return nil, internal(op, err)
		}
		if want != nil && !want[unit] {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(doc, &m); err != nil {
			return nil, internal(op, fmt.Errorf("unit %q: %w", unit, err))
		}
		out[unit] = m
	}
	return out, internal(op, rows.Err())
}

// UnitAttributeNames lists the attribute names stored for any unit, sorted,
// at most limit of them.
func (db *DB) UnitAttributeNames(ctx context.Context, limit int) ([]string, error) {
	const op = "store.UnitAttributeNames"
	rows, err := db.db.QueryContext(ctx, `SELECT DISTINCT k FROM (SELECT unnest(json_keys(attrs)) AS k FROM unit_attributes) ORDER BY k LIMIT ?`, limit)
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, internal(op, err)
		}
		out = append(out, k)
	}
	return out, internal(op, rows.Err())
}

// EventProperty is a unit's segment read from its events
// (UnitEventProperties): the property's value (JSON-decoded; nil for JSON
// null) on the unit's first event of the type, and whether that event came
// after the unit's first exposure to the experiment.
type EventProperty struct {
	Value         any
	AfterExposure bool
}

// UnitEventProperties returns, for those of units exposed to experiment that
// have an event of eventType carrying property, the property's value on the
// first such event (by time, then event id) and whether it came after the
// unit's first exposure. The store's events are read (not a team's own
// ClickHouse events table).
func (db *DB) UnitEventProperties(ctx context.Context, experimentKey, eventType, property string, units []string) (map[string]EventProperty, error) {
	const op = "store.UnitEventProperties"
	out := map[string]EventProperty{}
	if len(units) == 0 {
		return out, nil
	}
	path := `$."` + property + `"` // the caller checks property (no quotes)
	rows, err := db.db.QueryContext(ctx, `
WITH u AS (SELECT unnest(?::VARCHAR[]) AS unit),
fx AS (SELECT unit, min(ts) AS first FROM exposures WHERE experiment = ? AND unit IN (SELECT unit FROM u) GROUP BY unit),
ev AS (
	SELECT unit, json_extract(properties, ?)::VARCHAR AS v, ts,
		row_number() OVER (PARTITION BY unit ORDER BY ts, event_id) AS k
	FROM events
	WHERE type = ? AND unit IN (SELECT unit FROM u) AND json_extract(properties, ?) IS NOT NULL)
SELECT ev.unit, ev.v, ev.ts > fx.first FROM ev JOIN fx USING (unit) WHERE ev.k = 1`, units, experimentKey, path, eventType, path)
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	for rows.Next() {
		var unit, v string
		var after bool
		if err := rows.Scan(&unit, &v, &after); err != nil {
			return nil, internal(op, err)
		}
		var x any
		if err := json.Unmarshal([]byte(v), &x); err != nil {
			return nil, internal(op, fmt.Errorf("unit %q: %w", unit, err))
		}
		out[unit] = EventProperty{Value: x, AfterExposure: after}
	}
	return out, internal(op, rows.Err())
}
