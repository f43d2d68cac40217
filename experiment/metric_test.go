package experiment

import (
	"errors"
	"testing"
)

func TestMetricCapAndWindowValidation(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	sum := func(c *Cap, w *Window) *Metric {
		return &Metric{Name: "m", EventType: "purchase", Aggregation: Sum, Cap: c, Window: w}
	}
	for _, tc := range []struct {
		name  string
		m     *Metric
		field string // "" valid
	}{
		{"upper value", sum(&Cap{Value: 60}, nil), ""},
		{"both percentiles", sum(&Cap{LowerPercentile: 0.01, Percentile: 0.99}, nil), ""},
		{"lower only", sum(&Cap{Lower: f(0)}, nil), ""},
		{"lower and upper", sum(&Cap{Lower: f(-10), Upper: f(0)}, nil), ""},
		{"fixed lower, percentile upper", sum(&Cap{Lower: f(0), Percentile: 0.99}, nil), ""},
		{"empty cap", sum(&Cap{}, nil), "cap"},
		{"value and upper", sum(&Cap{Value: 3, Upper: f(3)}, nil), "cap"},
		{"value and percentile", sum(&Cap{Value: 3, Percentile: 0.9}, nil), "cap"},
		{"lower and lower percentile", sum(&Cap{Lower: f(1), LowerPercentile: 0.1}, nil), "cap"},
		{"negative value", sum(&Cap{Value: -3}, nil), "cap.value"},
		{"lower percentile out of range", sum(&Cap{LowerPercentile: 1.5}, nil), "cap.lower_percentile"},
		{"lower percentile above upper", sum(&Cap{LowerPercentile: 0.9, Percentile: 0.5}, nil), "cap.lower_percentile"},
		{"lower above upper", sum(&Cap{Lower: f(5), Upper: f(1)}, nil), "cap.lower"},
		{"lower equal to value", sum(&Cap{Lower: f(5), Value: 5}, nil), "cap.lower"},
		{"infinite upper", sum(&Cap{Upper: f(2e12)}, nil), "cap.upper"},
		{"binary with lower cap", &Metric{Name: "m", EventType: "v", Aggregation: Binary, Cap: &Cap{Lower: f(0)}}, "cap"},
		{"matured window", &Metric{Name: "m", EventType: "v", Aggregation: Binary, Window: &Window{StartDays: 7, EndDays: 8, MaturedOnly: true}}, ""},
		{"matured mean", &Metric{Name: "m", EventType: "v", Aggregation: Mean, Window: &Window{EndDays: 8, MaturedOnly: true}}, "window.matured_only"},
	} {
		err := tc.m.Validate()
		var le *Error
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%s: %v, want valid", tc.name, err)
		case tc.field != "" && (KindOf(err) != Invalid || !errors.As(err, &le) || le.Field != tc.field):
			t.Errorf("%s: %v, want Invalid naming %s", tc.name, err, tc.field)
		}
	}
}
