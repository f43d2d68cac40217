package experiment

import (
	"encoding/json"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// Fuzz targets of the parsers of outside input in this package; "make fuzz"
// runs each for FUZZTIME, and without -fuzz they run over their seeds.

// FuzzIdentProblem checks IdentProblem against its definition written with
// the standard library: valid UTF-8 without unicode.IsControl runes (exactly
// U+0000–U+001F and U+007F–U+009F).
func FuzzIdentProblem(f *testing.F) {
	for _, s := range []string{"user-1", "victim\x00x", "a\x7fb", "\u0085", "\xff", "用户 ☕", "\uFFFD", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := utf8.ValidString(s)
		for _, r := range s {
			want = want && !unicode.IsControl(r)
		}
		if got := IdentProblem(s) == ""; got != want {
			t.Fatalf("IdentProblem(%q) = %q, want ok = %v", s, IdentProblem(s), want)
		}
	})
}

// FuzzParseDuration: no panic, and a parsed duration prints in Go's form that
// parses back to the same value.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"90d", "36h", "15m", "1h30m", "106751d", "106752d", "-5s", "1.5h", "d", "0d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			return // callers wrap the message as Invalid with their field
		}
		back, err := ParseDuration(time.Duration(d).String())
		if err != nil || back != d {
			t.Fatalf("ParseDuration(%q) = %v, which parses back as %v, %v", s, time.Duration(d), time.Duration(back), err)
		}
	})
}

// FuzzMetricDefinition decodes and validates metric definitions as the API
// does: no panic, and an accepted definition has a valid name and identifier
// fields.
func FuzzMetricDefinition(f *testing.F) {
	for _, s := range []string{
		`{"name": "revenue", "event_type": "purchase", "aggregation": "sum", "covariate": {"days": 7}, "cap": {"percentile": 0.99}}`,
		`{"name": "aov", "aggregation": "ratio", "numerator": "revenue", "denominator": "orders"}`,
		`{"name": "conv", "event_type": "signup", "aggregation": "binary", "window": {"start_days": 0, "end_days": 7}, "higher_is_better": false}`,
		`{"name": "dp", "event_type": "x", "aggregation": "mean", "bounds": {"lower": 0, "upper": 100}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Metric
		if json.Unmarshal(b, &m) != nil {
			return
		}
		err := m.Validate()
		if err != nil {
			if KindOf(err) != Invalid {
				t.Fatalf("%q: error of kind %v: %v", b, KindOf(err), err)
			}
			return
		}
		if !ValidKey(m.Name) || IdentProblem(m.EventType) != "" {
			t.Fatalf("%q: accepted a metric with name %q, event type %q", b, m.Name, m.EventType)
		}
	})
}

// FuzzExperimentDefinition decodes, defaults and validates experiment
// definitions as the registry does: no panic, and an accepted one has a valid
// key and variants whose weights sum to 1.
func FuzzExperimentDefinition(f *testing.F) {
	for _, s := range []string{
		`{"key": "checkout", "variants": [{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}], "metrics": [{"name": "revenue", "primary": true}, "orders"]}`,
		`{"key": "x", "variants": [{"name": "a", "weight": 1}], "layer": "site", "layer_range": {"start": 0, "end": 0.5}, "holdout": "global", "hash_version": 1}`,
		`{"key": "seq", "variants": [{"name": "a", "weight": 0.3}, {"name": "b", "weight": 0.7}], "analysis": {"sequential": true, "alpha": 0.05}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var e Experiment
		if json.Unmarshal(b, &e) != nil {
			return
		}
		e.ApplyDefaults()
		err := e.Validate()
		if err != nil {
			if KindOf(err) != Invalid {
				t.Fatalf("%q: error of kind %v: %v", b, KindOf(err), err)
			}
			return
		}
		if !ValidKey(e.Key) || len(e.Variants) == 0 {
			t.Fatalf("%q: accepted key %q with %d variants", b, e.Key, len(e.Variants))
		}
	})
}
