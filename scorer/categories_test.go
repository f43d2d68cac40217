package scorer

import (
	"slices"
	"testing"

	"github.com/liftlab/lift/experiment"
)

func TestItemCategories(t *testing.T) {
	m := &Model{Dim: 1, ItemIDs: []string{"a", "b", "c"}, Items: []float32{1, 2, 3},
		Meta: Metadata{Extra: map[string]string{MetaItemCategories: `{"a": "health", "c": "health", "b": "books", "zz": "x"}`}}}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := m.ItemsIn("health"); !slices.Equal(got, []int32{0, 2}) {
		t.Errorf("health items %v, want rows 0 and 2", got)
	}
	if m.CategoryOf("b") != "books" || m.CategoryOf("nope") != "" || m.ItemsIn("x") != nil {
		t.Errorf("categories: b %q, unknown item %q, category of an unknown item %v", m.CategoryOf("b"), m.CategoryOf("nope"), m.ItemsIn("x"))
	}
	bad := &Model{Dim: 1, ItemIDs: []string{"a"}, Items: []float32{1}, Meta: Metadata{Extra: map[string]string{MetaItemCategories: `["a"]`}}}
	var e *experiment.Error
	if err := bad.Validate(); !asError(err, &e) || e.Field != MetaItemCategories {
		t.Errorf("malformed categories: %v, want Invalid naming %s", err, MetaItemCategories)
	}
}
