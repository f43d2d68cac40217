package api

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/liftlab/lift/experiment"
)

// TestAppendAssignmentMatchesEncodingJSON checks the hand-written encoder
// against encoding/json.Marshal, byte for byte.
func TestAppendAssignmentMatchesEncodingJSON(t *testing.T) {
	names := []string{"", "control", `quote " back \ slash`, "tab\tnew\nline\r\b\f\x01\x1f", "<script>&amp;", "josé", "用户123", "😀",
		"bad utf8 \xff\xfe end", "line\u2028sep\u2029", "\x7f del"}
	buckets := []float64{0, 0.5, 0.1315, 0.9999, 1e-7, 3.5e-9, 1e-6, 0.000123, 1.0 / 3, math.Nextafter(1, 0)}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		v := names[rng.IntN(len(names))]
		a := experiment.Assignment{
			Experiment:   names[rng.IntN(len(names))],
			Unit:         names[rng.IntN(len(names))],
			InExperiment: rng.IntN(2) == 0,
			Bucket:       buckets[rng.IntN(len(buckets))],
			HashVersion:  1 + rng.IntN(2),
		}
		if i%3 == 0 {
			a.Bucket = rng.Float64()
		}
		if rng.IntN(2) == 0 {
			a.Variant = &v
		}
		if rng.IntN(2) == 0 {
			a.Holdout = &experiment.HoldoutAssignment{Name: names[rng.IntN(len(names))], Version: rng.IntN(100), InHoldout: rng.IntN(2) == 0}
		}
		want, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendAssignment(nil, &a); !bytes.Equal(got, want) {
			t.Fatalf("case %d:\n got %s\nwant %s", i, got, want)
		}
	}
	as := []experiment.Assignment{{Experiment: "e", Unit: "u", HashVersion: 2}, {Experiment: "e", Unit: "w", Bucket: 0.25}}
	want, _ := json.Marshal(assignBatchResponse{Experiment: "e", Exposed: 3, Assignments: as})
	if got := appendBatch(nil, "e", 3, as); !bytes.Equal(got, want) {
		t.Fatalf("batch:\n got %s\nwant %s", got, want)
	}
}

// fastMatchesSlow decodes body both ways and fails when the fast path accepts a
// body that encoding/json decodes differently or rejects.
func fastMatchesSlow(t *testing.T, body []byte) (fast bool) {
	var got []exposureIn
	if !decodeExposuresFast(body, &got) {
		return false
	}
	var want exposureBatch
	if err := decodeJSON(body, &want); err != nil {
		t.Fatalf("fast path accepted %q, encoding/json rejects it: %v", body, err)
	}
	if len(got) == 0 && len(want.Exposures) == 0 {
		return true
	}
	if !reflect.DeepEqual(got, want.Exposures) {
		t.Fatalf("body %q:\nfast %+v\nslow %+v", body, got, want.Exposures)
	}
	return true
}

func TestDecodeExposuresFast(t *testing.T) {
	cases := []struct {
		body string
		fast bool // whether the fast path takes it
	}{
		{`{"exposures":[]}`, true},
		{` { "exposures" : [ { "experiment" : "e", "unit" : "u1", "variant" : "a", "ts" : "2026-03-01T12:00:00.123456Z" } ] } `, true},
		{`{"exposures":[{"experiment":"e","unit":"u1","in_holdout":true,"holdout_version":12},{"unit":"u2","experiment":"e","variant":"b","ts":null}]}`, true},
		{`{"exposures":[{"experiment":"e","unit":"josé 用户","variant":"a","ts":"2026-03-01T12:00:00+02:00","in_holdout":false}]}`, true},
		{`{"exposures":[{}]}`, true},
		{`{"exposures":[{"experiment":"e","unit":"a\"b","variant":"a"}]}`, false},      // escape
		{`{"exposures":[{"experiment":"e","unit":"u","colour":"red"}]}`, false},        // unknown field
		{`{"exposures":[{"experiment":"e","unit":"u","holdout_version":1.5}]}`, false}, // not an integer
		{`{"exposures":[{"experiment":"e","unit":"u","holdout_version":01}]}`, false},  // leading zero
		{`{"exposures":[{"experiment":"e","unit":"u","ts":"yesterday"}]}`, false},      // bad time
		{`{"exposures":[{"experiment":"e","unit":"u"}],"more":1}`, false},              // extra field
		{`{"exposures":[{"experiment":"e","unit":"u"}]} x`, false},                     // trailing data
		{`{"exposures":[{"experiment":"e","unit":"u",}]}`, false},                      // malformed
		{`{"exposures":[{"experiment":"e","unit":"\xff"}]}`, false},                    // invalid UTF-8
		{`{"exposures":[{"experiment":"e","unit":"u","in_holdout":"yes"}]}`, false},    // wrong type
		{`{"exposures":null}`, false},                                                  // null
	}
	for _, c := range cases {
		if got := fastMatchesSlow(t, []byte(c.body)); got != c.fast {
			t.Errorf("fast path took %q: %v, want %v", c.body, got, c.fast)
		}
	}
}

func FuzzDecodeExposuresFast(f *testing.F) {
	f.Add([]byte(`{"exposures":[{"experiment":"e","unit":"u1","variant":"a","ts":"2026-03-01T12:00:00Z","in_holdout":true,"holdout_version":3}]}`))
	f.Add([]byte(`{"exposures":[]}`))
	f.Fuzz(func(t *testing.T, body []byte) { fastMatchesSlow(t, body) })
}

func assignFastMatchesSlow(t *testing.T, body []byte) (fast bool) {
	var got assignBatchRequest
	if !decodeAssignFast(body, &got) {
		return false
	}
	var want assignBatchRequest
	if err := decodeJSON(body, &want); err != nil {
		t.Fatalf("fast path accepted %q, encoding/json rejects it: %v", body, err)
	}
	if len(got.Units) == 0 && len(want.Units) == 0 {
		got.Units, want.Units = nil, nil
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("body %q:\nfast %+v\nslow %+v", body, got, want)
	}
	return true
}

func TestDecodeAssignFast(t *testing.T) {
	cases := []struct {
		body string
		fast bool
	}{
		{`{"experiment":"e","units":["a","b"],"expose":true}`, true},
		{` { "units" : [ "josé" , "用户" ] , "experiment" : "e" , "expose" : null } `, true},
		{`{"experiment":"e","units":[]}`, true},
		{`{}`, true},
		{`{"experiment":"e","units":["a\n"]}`, false},     // escape
		{`{"experiment":"e","units":[1]}`, false},         // wrong type
		{`{"experiment":"e","units":["a",]}`, false},      // malformed
		{`{"experiment":"e","units":["a"],"x":1}`, false}, // unknown field
		{`{"experiment":"e","units":["a"]}]`, false},      // trailing data
		{`{"experiment":"e","expose":"yes"}`, false},      // wrong type
	}
	for _, c := range cases {
		if got := assignFastMatchesSlow(t, []byte(c.body)); got != c.fast {
			t.Errorf("fast path took %q: %v, want %v", c.body, got, c.fast)
		}
	}
}

func FuzzDecodeAssignFast(f *testing.F) {
	f.Add([]byte(`{"experiment":"e","units":["a","b"],"expose":true}`))
	f.Fuzz(func(t *testing.T, body []byte) { assignFastMatchesSlow(t, body) })
}
