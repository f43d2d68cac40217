// Package jsoncmp compares decoded JSON documents (what encoding/json
// decodes into any) for tests: numbers to a relative tolerance, since
// numbers recomputed by DuckDB's parallel sums differ in their last bits,
// everything else exactly. Tests only import it (internal/archtest checks
// that no package does).
package jsoncmp

import (
	"fmt"
	"math"
	"reflect"
)

// Diff describes the first difference between got and want, "" when there
// is none: numbers are equal within tol relative to |want| (absolute below
// 1), objects have the same keys, arrays the same length, and anything else
// is equal.
func Diff(got, want any, tol float64) string { return diff("", got, want, tol) }

func diff(path string, got, want any, tol float64) string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s: %v, want an object", path, got)
		}
		for k, wv := range w {
			if d := diff(path+"."+k, g[k], wv, tol); d != "" {
				return d
			}
		}
		if len(g) != len(w) {
			return fmt.Sprintf("%s: %d keys, want %d", path, len(g), len(w))
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Sprintf("%s: %v, want %d items", path, got, len(w))
		}
		for i := range w {
			if d := diff(fmt.Sprintf("%s[%d]", path, i), g[i], w[i], tol); d != "" {
				return d
			}
		}
	case float64:
		g, ok := got.(float64)
		if !ok || math.Abs(g-w) > tol*math.Max(1, math.Abs(w)) {
			return fmt.Sprintf("%s: %v, want %v", path, got, w)
		}
	default:
		if !reflect.DeepEqual(got, want) {
			return fmt.Sprintf("%s: %v, want %v", path, got, want)
		}
	}
	return ""
}
