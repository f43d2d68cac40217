package scorer

import (
	"bytes"
	"testing"
)

// FuzzSafetensors parses arbitrary model files: no panic, and a file that
// parses has tensors whose data decodes to exactly the elements of its shape.
// "make fuzz" runs it for FUZZTIME; without -fuzz it runs over its seeds.
func FuzzSafetensors(f *testing.F) {
	var buf bytes.Buffer
	if err := writeSafetensors(&buf, map[string]string{"format": "lift"}, []namedTensor{
		{name: "items", shape: []int64{3, 2}, data: []float32{1, 2, 3, 4, 5, 6}},
		{name: "bias", shape: []int64{3}, data: []float32{0.5, -1, 2}},
	}); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte("\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,2]}}\x00\x3c"))
	f.Add([]byte("\x02\x00\x00\x00\x00\x00\x00\x00{}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := parseSafetensors(b)
		if err != nil {
			return
		}
		for name, ti := range st.tensors {
			n := int64(1)
			for _, d := range ti.Shape {
				n *= d
			}
			if got := st.float32s(name); int64(len(got)) != n {
				t.Fatalf("tensor %q of shape %v decodes to %d elements", name, ti.Shape, len(got))
			}
		}
	})
}
