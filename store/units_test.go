package store

import (
	"context"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/liftlab/lift/experiment"
)

func TestUpsertUnitAttributesMerges(t *testing.T) {
	db, _ := openTest(t, newClock())
	ctx := context.Background()
	n, err := db.UpsertUnitAttributes(ctx, []UnitAttributes{
		{Unit: "u1", Attributes: map[string]any{"plan": "pro", "tenure": 12.0}},
		{Unit: "u2", Attributes: map[string]any{"plan": "free", "gone": nil}},
		{Unit: "u1", Attributes: map[string]any{"mobile": true}}, // same unit again: merged in order
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("written %d units, want 2 distinct", n)
	}
	// A second batch: replace one key, remove another with null, keep the rest.
	if _, err := db.UpsertUnitAttributes(ctx, []UnitAttributes{{Unit: "u1", Attributes: map[string]any{"plan": "team", "tenure": nil}}}); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetUnitAttributes(ctx, []string{"u1", "u2", "u3"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]any{
		"u1": {"plan": "team", "mobile": true},
		"u2": {"plan": "free"}, // a null for a key never stored is not stored
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("attributes = %v, want %v", got, want)
	}
	// The names in use, sorted: tenure and gone were removed.
	for _, c := range []struct {
		limit int
		want  []string
	}{{10, []string{"mobile", "plan"}}, {1, []string{"mobile"}}} {
		names, err := db.UnitAttributeNames(ctx, c.limit)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(names, c.want) {
			t.Errorf("UnitAttributeNames(%d) = %q, want %q", c.limit, names, c.want)
		}
	}
}

func TestUpsertUnitAttributesInvalid(t *testing.T) {
	db, _ := openTest(t, newClock())
	ctx := context.Background()
	if _, err := db.UpsertUnitAttributes(ctx, []UnitAttributes{{Unit: "kept", Attributes: map[string]any{"a": 1.0}}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		in    []UnitAttributes
		field string
	}{
		{"empty unit", []UnitAttributes{{Unit: "ok"}, {Unit: ""}}, "units[1].unit"},
		{"nested value", []UnitAttributes{{Unit: "x", Attributes: map[string]any{"geo": map[string]any{"city": "Oslo"}}}}, "units[0].attributes.geo"},
		{"array value", []UnitAttributes{{Unit: "x", Attributes: map[string]any{"tags": []any{"a"}}}}, "units[0].attributes.tags"},
		{"empty name", []UnitAttributes{{Unit: "x", Attributes: map[string]any{"": 1.0}}}, "units[0].attributes"},
		{"long name", []UnitAttributes{{Unit: "x", Attributes: map[string]any{strings.Repeat("a", MaxAttributeName+1): 1.0}}}, "units[0].attributes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := db.UpsertUnitAttributes(ctx, tc.in)
			var e *experiment.Error
			if !asError(err, &e) || e.Kind != experiment.Invalid || string(e.Field) != tc.field {
				t.Fatalf("error %v, want Invalid naming %s", err, tc.field)
			}
		})
	}
	// Nothing of a rejected batch is written.
	if n := count(t, db, `SELECT count(*) FROM unit_attributes`); n != 1 {
		t.Errorf("%d rows after rejected batches, want 1", n)
	}
}

func TestUpsertUnitAttributesManyChunks(t *testing.T) {
	db, _ := openTest(t, newClock())
	in := make([]UnitAttributes, 3*upsertChunk+7)
	for i := range in {
		in[i] = UnitAttributes{Unit: "u" + strconv.Itoa(i), Attributes: map[string]any{"i": float64(i)}}
	}
	n, err := db.UpsertUnitAttributes(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(in) || count(t, db, `SELECT count(*) FROM unit_attributes`) != len(in) {
		t.Errorf("written %d, stored %d, want %d", n, count(t, db, `SELECT count(*) FROM unit_attributes`), len(in))
	}
	if s := count(t, db, `SELECT sum((attrs->>'i')::INTEGER) FROM unit_attributes`); s != len(in)*(len(in)-1)/2 {
		t.Errorf("sum of i = %d, want %d", s, len(in)*(len(in)-1)/2)
	}
}

// TestGetUnitAttributesMany: the same answer whether the units are looked up
// (at most manyUnits) or the table is scanned (more): exactly the asked units
// that have attributes, with their values as stored.
func TestGetUnitAttributesMany(t *testing.T) {
	db, _ := openTest(t, newClock())
	ctx := context.Background()
	var in []UnitAttributes
	for i := range 3 * manyUnits {
		in = append(in, UnitAttributes{Unit: "u" + strconv.Itoa(i), Attributes: map[string]any{"i": float64(i), "even": i%2 == 0}})
	}
	if _, err := db.UpsertUnitAttributes(ctx, in); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{manyUnits, manyUnits + 1, 2 * manyUnits} {
		var ask []string
		want := map[string]map[string]any{}
		for i := range n {
			j := 2*i + 1 // every other stored unit, then units never stored
			u := "u" + strconv.Itoa(j)
			ask = append(ask, u)
			if j < 3*manyUnits {
				want[u] = map[string]any{"i": float64(j), "even": false}
			}
		}
		got, err := db.GetUnitAttributes(ctx, ask)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%d units: %d answered, want %d", n, len(got), len(want))
		}
	}
}
