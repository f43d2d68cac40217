package jsoncmp

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestDiff(t *testing.T) {
	for _, c := range []struct {
		name, got, want string
		tol             float64
		diff            string // "" or a part of the difference's description
	}{
		{"the same", `{"a": [1, "x", true, null]}`, `{"a": [1, "x", true, null]}`, 0, ""},
		{"within the tolerance", `{"a": 1000.0000001}`, `{"a": 1000}`, 1e-9, ""},
		{"beyond it", `{"a": 1000.01}`, `{"a": 1000}`, 1e-9, ".a: 1000.01, want 1000"},
		{"absolute below 1", `{"a": 1e-10}`, `{"a": 0}`, 1e-9, ""},
		{"a key more", `{"a": 1, "b": 2}`, `{"a": 1}`, 0, ": 2 keys, want 1"},
		{"a key missing", `{"b": 1}`, `{"a": 1}`, 0, ".a: <nil>, want 1"},
		{"an item fewer", `[1]`, `[1, 2]`, 0, "want 2 items"},
		{"a string", `["y"]`, `["x"]`, 0, "[0]: y, want x"},
		{"a number for a string", `[1]`, `["1"]`, 0, "[0]: 1, want 1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got, want any
			if err := json.Unmarshal([]byte(c.got), &got); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(c.want), &want); err != nil {
				t.Fatal(err)
			}
			d := Diff(got, want, c.tol)
			if (d == "") != (c.diff == "") || !strings.Contains(d, c.diff) {
				t.Errorf("Diff = %q, want %q", d, c.diff)
			}
		})
	}
}
