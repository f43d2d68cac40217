package scorer

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
)

func TestModelRoundTrip(t *testing.T) {
	m := randomModel(t, 37, 5, 4, 0, true, 11)
	m.Meta = Metadata{
		Name: "shop", Version: "3", TrainingData: "interactions 2026-01-01..2026-02-01",
		Created: time.Date(2026, 2, 1, 12, 0, 0, 0, time.UTC),
		Metrics: map[string]float64{"recall@10": 0.25, "ndcg@10": 0.125},
		Lambda:  0.5, Alpha: 10, Extra: map[string]string{"team": "growth"},
	}
	path := filepath.Join(t.TempDir(), "m.safetensors")
	if err := m.Save(context.Background(), path); err != nil {
		t.Fatal(err)
	}
	got, err := Load(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Dim != m.Dim || !slices.Equal(got.Items, m.Items) || !slices.Equal(got.Users, m.Users) ||
		!slices.Equal(got.Bias, m.Bias) || !slices.Equal(got.ItemIDs, m.ItemIDs) || !slices.Equal(got.UserIDs, m.UserIDs) {
		t.Fatal("tensors or ids differ after a round trip")
	}
	gm, wm := got.Meta, m.Meta
	if gm.Name != wm.Name || gm.Version != wm.Version || gm.TrainingData != wm.TrainingData ||
		!gm.Created.Equal(wm.Created) || gm.Metrics["recall@10"] != 0.25 || gm.Lambda != 0.5 ||
		gm.Alpha != 10 || gm.Extra["team"] != "growth" {
		t.Fatalf("metadata differs: got %+v, want %+v", gm, wm)
	}
	if i, ok := got.ItemIndex("item-36"); !ok || i != 36 {
		t.Fatalf("ItemIndex(item-36) = %d, %v", i, ok)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("Save left %d files, want only the model", len(entries))
	}
}

// handMade builds a safetensors file byte by byte from the format specification
// (8-byte little-endian header length, JSON header, raw little-endian data), the
// way safetensors.torch.save_file lays out
//
//	save_file({"item_embeddings": torch.tensor([[1., 2.], [3., 4.], [5., 6.]]),
//	           "item_bias": torch.tensor([0.5, 0., -0.5])},
//	          "m.safetensors", metadata={"name": "hand", "item_ids": '["a","b","c"]'})
//
// (tensors sorted by dtype alignment then name: item_bias first).
func handMade(header string, floats []float32) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, uint64(len(header)))
	b.WriteString(header)
	binary.Write(&b, binary.LittleEndian, floats)
	return b.Bytes()
}

const handHeader = `{"__metadata__":{"item_ids":"[\"a\",\"b\",\"c\"]","name":"hand"},` +
	`"item_bias":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},` +
	`"item_embeddings":{"dtype":"F32","shape":[3,2],"data_offsets":[12,36]}}`

var handFloats = []float32{0.5, 0, -0.5, 1, 2, 3, 4, 5, 6}

func TestDecodeHandMade(t *testing.T) {
	m, err := Decode(handMade(handHeader, handFloats))
	if err != nil {
		t.Fatal(err)
	}
	if m.Dim != 2 || m.Meta.Name != "hand" || !slices.Equal(m.ItemIDs, []string{"a", "b", "c"}) ||
		!slices.Equal(m.Items, []float32{1, 2, 3, 4, 5, 6}) || !slices.Equal(m.Bias, []float32{0.5, 0, -0.5}) || m.NUsers() != 0 {
		t.Fatalf("decoded %+v", m)
	}
}

func TestDecodeDTypes(t *testing.T) {
	// 1.5 in each encoding: F16 0x3E00, BF16 0x3FC0 (IEEE 754 binary16 and bfloat16).
	tests := []struct {
		dtype string
		raw   []byte
	}{
		{"F16", []byte{0x00, 0x3e}},
		{"BF16", []byte{0xc0, 0x3f}},
		{"F64", binary.LittleEndian.AppendUint64(nil, math.Float64bits(1.5))},
	}
	for _, tc := range tests {
		t.Run(tc.dtype, func(t *testing.T) {
			n := len(tc.raw)
			h := `{"__metadata__":{"item_ids":"[\"a\"]"},"item_embeddings":{"dtype":"` + tc.dtype +
				`","shape":[1,1],"data_offsets":[0,` + string(rune('0'+n)) + `]}}`
			var b bytes.Buffer
			binary.Write(&b, binary.LittleEndian, uint64(len(h)))
			b.WriteString(h)
			b.Write(tc.raw)
			m, err := Decode(b.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if m.Items[0] != 1.5 {
				t.Fatalf("got %v, want 1.5", m.Items[0])
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	good := handMade(handHeader, handFloats)
	tests := []struct {
		name  string
		file  []byte
		field string // expected field, "" when the error is about framing
		msg   string // substring of the message
	}{
		{"short", []byte{1, 2}, "", "shorter than"},
		{"header past end", binary.LittleEndian.AppendUint64(nil, 100), "", "runs past"},
		{"huge header", binary.LittleEndian.AppendUint64(nil, 1<<40), "", "exceeds"},
		{"not json", handMade("[1,2]   ", nil), "", "start with"},
		{"bad dtype", handMade(strings.Replace(handHeader, `"F32","shape":[3,2]`, `"I64","shape":[3,2]`, 1), handFloats), "", "unsupported dtype"},
		{"size mismatch", handMade(strings.Replace(handHeader, `[3,2]`, `[3,3]`, 1), handFloats), "", "needs 36"},
		{"hole", handMade(strings.Replace(handHeader, `[12,36]`, `[16,40]`, 1), append(handFloats, 0)), "", "contiguous"},
		{"trailing", append(slices.Clone(good), 0, 0, 0, 0), "", "trailing"},
		{"missing items", handMade(`{"item_bias":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, []float32{1}), TensorItems, "missing"},
		{"id count", handMade(strings.Replace(handHeader, `[\"a\",\"b\",\"c\"]`, `[\"a\",\"b\"]`, 1), handFloats), MetaItemIDs, "2 ids for 3 rows"},
		{"dup id", handMade(strings.Replace(handHeader, `[\"a\",\"b\",\"c\"]`, `[\"a\",\"b\",\"a\"]`, 1), handFloats), "item_ids[2]", "duplicate"},
		{"nan", handMade(handHeader, []float32{0.5, 0, -0.5, 1, 2, float32(math.NaN()), 4, 5, 6}), TensorItems, "non-finite"},
		{"bias shape", handMade(strings.Replace(strings.Replace(handHeader, `[3],"data_offsets":[0,12]`, `[2],"data_offsets":[0,8]`, 1), `[12,36]`, `[8,32]`, 1), handFloats[1:]), TensorBias, "want [3]"},
		{"no item ids", handMade(strings.Replace(handHeader, `"item_ids":"[\"a\",\"b\",\"c\"]",`, ``, 1), handFloats), MetaItemIDs, "missing"},
		{"unknown tensor", handMade(strings.Replace(handHeader, `"item_bias"`, `"bias"`, 1), handFloats), "bias", "unknown tensor"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.file)
			if !experiment.Is(err, experiment.Invalid) {
				t.Fatalf("err = %v, want invalid", err)
			}
			var e *experiment.Error
			asError(err, &e)
			if tc.field != "" && e.Field != tc.field {
				t.Errorf("field = %q, want %q (err %v)", e.Field, tc.field, err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("err = %v, want it to mention %q", err, tc.msg)
			}
		})
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := Load(context.Background(), filepath.Join(t.TempDir(), "nope.safetensors"))
	if !experiment.Is(err, experiment.NotFound) {
		t.Fatalf("err = %v, want not_found", err)
	}
}

// FuzzLoad checks that Decode never panics and that whatever it accepts is a valid
// model that survives a round trip.
func FuzzLoad(f *testing.F) {
	f.Add(handMade(handHeader, handFloats))
	var b bytes.Buffer
	m := &Model{Dim: 2, ItemIDs: []string{"x", "y"}, Items: []float32{1, 2, 3, 4}, UserIDs: []string{"u"}, Users: []float32{1, 1}}
	m.Encode(&b)
	f.Add(b.Bytes())
	f.Add([]byte{})
	f.Add(binary.LittleEndian.AppendUint64(nil, 2))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data)
		if err != nil {
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("Decode accepted an invalid model: %v", err)
		}
		var out bytes.Buffer
		if err := m.Encode(&out); err != nil {
			t.Fatal(err)
		}
		m2, err := Decode(out.Bytes())
		if err != nil {
			t.Fatalf("re-decoding an encoded model: %v", err)
		}
		if !slices.Equal(m.Items, m2.Items) || !slices.Equal(m.ItemIDs, m2.ItemIDs) {
			t.Fatal("round trip changed the model")
		}
	})
}

func TestFoldInSolvesNormalEquations(t *testing.T) {
	// Independent check of the YᵀY trick: build YᵀCᵘY + λI densely over all items
	// (c_i = 1 + α·r_i for the given items, 1 elsewhere), and check the residual of
	// the normal equations (YᵀCᵘY + λI)x = YᵀCᵘp at FoldIn's answer.
	m := randomModel(t, 200, 6, 0, 0, false, 5)
	m.Meta.Lambda, m.Meta.Alpha = 0.3, 5
	items := []int32{3, 17, 3, 150}
	r := []float32{1, 2, 0.5, 1}
	x, err := m.FoldIn(items, r)
	if err != nil {
		t.Fatal(err)
	}
	d := m.Dim
	strength := map[int32]float64{3: 1.5, 17: 2, 150: 1}
	a := make([]float64, d*d)
	b := make([]float64, d)
	for i := range m.NItems() {
		c, p := 1.0, 0.0
		if s, ok := strength[int32(i)]; ok {
			c, p = 1+5*s, 1
		}
		y := m.Item(i)
		for j := range d {
			b[j] += c * p * float64(y[j])
			for l := range d {
				a[j*d+l] += c * float64(y[j]) * float64(y[l])
			}
		}
	}
	for j := range d {
		a[j*d+j] += 0.3
		var res float64
		for l := range d {
			res += a[j*d+l] * float64(x[l])
		}
		if math.Abs(res-b[j]) > 1e-4*math.Max(1, math.Abs(b[j])) {
			t.Errorf("row %d: (Aₓ)=%g, b=%g", j, res, b[j])
		}
	}
}

func TestQuery(t *testing.T) {
	m := randomModel(t, 50, 4, 3, 0, false, 9)
	q, folded, err := m.Query("user-1", nil)
	if err != nil || folded || !slices.Equal(q, m.User(1)) {
		t.Fatalf("known user: %v %v %v", q, folded, err)
	}
	q, folded, err = m.Query("new", []string{"item-4", "unknown", "item-9"})
	want, _ := m.FoldIn([]int32{4, 9}, nil)
	if err != nil || !folded || !slices.Equal(q, want) {
		t.Fatalf("fold-in: %v %v %v", q, folded, err)
	}
	if _, _, err := m.Query("new", []string{"unknown"}); !experiment.Is(err, experiment.InsufficientData) {
		t.Fatalf("no known items: err = %v", err)
	}
}
