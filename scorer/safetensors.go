package scorer

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"unicode/utf8"
)

// The safetensors format (https://github.com/huggingface/safetensors, "Format"):
//
//	[8 bytes] N, the header length, unsigned little-endian
//	[N bytes] a UTF-8 JSON object: for each tensor name {"dtype", "shape", "data_offsets": [begin, end]}
//	          and optionally "__metadata__": a map of string to string
//	[rest]    the tensors' raw little-endian bytes; offsets are relative to the start of this
//	          section, and the tensors cover it exactly (no holes, no overlaps)
//
// The parser below enforces every rule of the reference implementation and a
// 100 MB header limit (the same as the reference's MAX_HEADER_SIZE).

// maxHeaderLen bounds the JSON header, as the reference implementation does.
const maxHeaderLen = 100 << 20

// dtypeSize is the byte size of each element type this package can read.
var dtypeSize = map[string]int64{"F32": 4, "F64": 8, "F16": 2, "BF16": 2}

// tensorInfo is one tensor's entry in a safetensors header.
type tensorInfo struct {
	DType   string   `json:"dtype"`
	Shape   []int64  `json:"shape"`
	Offsets [2]int64 `json:"data_offsets"`
}

// stFile is a parsed safetensors buffer; data aliases the input.
type stFile struct {
	meta    map[string]string
	tensors map[string]tensorInfo
	data    []byte
}

// parseSafetensors checks the framing, header and offsets of b and returns the
// tensors it holds. Errors name the offending tensor or byte position.
func parseSafetensors(b []byte) (*stFile, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("file is %d bytes, shorter than the 8-byte header length", len(b))
	}
	n := binary.LittleEndian.Uint64(b[:8])
	if n > maxHeaderLen {
		return nil, fmt.Errorf("header length %d exceeds the %d-byte limit", n, maxHeaderLen)
	}
	if n > uint64(len(b)-8) {
		return nil, fmt.Errorf("header length %d runs past the end of the %d-byte file", n, len(b))
	}
	hdr := b[8 : 8+n]
	if !utf8.Valid(hdr) {
		return nil, fmt.Errorf("header is not valid UTF-8")
	}
	if len(hdr) == 0 || hdr[0] != '{' {
		return nil, fmt.Errorf("header does not start with '{'")
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(hdr, &raw); err != nil {
		return nil, fmt.Errorf("header JSON: %w", err)
	}
	f := &stFile{tensors: make(map[string]tensorInfo, len(raw)), data: b[8+n:]}
	for name, v := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(v, &f.meta); err != nil {
				return nil, fmt.Errorf("__metadata__ must be an object of strings: %w", err)
			}
			continue
		}
		var ti tensorInfo
		dec := json.NewDecoder(bytes.NewReader(v))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ti); err != nil {
			return nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		size, ok := dtypeSize[ti.DType]
		if !ok {
			return nil, fmt.Errorf("tensor %q: unsupported dtype %q (want F32, F16, BF16 or F64)", name, ti.DType)
		}
		count := int64(1)
		for j, d := range ti.Shape {
			if d < 0 {
				return nil, fmt.Errorf("tensor %q: shape[%d] is negative (%d)", name, j, d)
			}
			if d != 0 && count > math.MaxInt64/size/d {
				return nil, fmt.Errorf("tensor %q: shape %v overflows", name, ti.Shape)
			}
			count *= d
		}
		begin, end := ti.Offsets[0], ti.Offsets[1]
		if begin < 0 || end < begin || end > int64(len(f.data)) {
			return nil, fmt.Errorf("tensor %q: data_offsets [%d, %d] outside the %d-byte data section", name, begin, end, len(f.data))
		}
		if end-begin != count*size {
			return nil, fmt.Errorf("tensor %q: data_offsets span %d bytes, but %s%v needs %d", name, end-begin, ti.DType, ti.Shape, count*size)
		}
		f.tensors[name] = ti
	}
	// The tensors must tile the data section exactly.
	names := make([]string, 0, len(f.tensors))
	for name := range f.tensors {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool {
		a, b := f.tensors[names[i]].Offsets, f.tensors[names[j]].Offsets
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		return a[1] < b[1]
	})
	var pos int64
	for _, name := range names {
		o := f.tensors[name].Offsets
		if o[0] != pos {
			return nil, fmt.Errorf("tensor %q: data_offsets begin at %d, want %d (tensors must be contiguous, without holes or overlaps)", name, o[0], pos)
		}
		pos = o[1]
	}
	if pos != int64(len(f.data)) {
		return nil, fmt.Errorf("tensors end at byte %d of a %d-byte data section (trailing bytes)", pos, len(f.data))
	}
	return f, nil
}

// float32s decodes tensor name to float32, converting F16, BF16 and F64.
func (f *stFile) float32s(name string) []float32 {
	ti := f.tensors[name]
	raw := f.data[ti.Offsets[0]:ti.Offsets[1]]
	size := dtypeSize[ti.DType]
	out := make([]float32, int64(len(raw))/size)
	switch ti.DType {
	case "F32":
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	case "F64":
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:])))
		}
	case "BF16":
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(raw[2*i:])) << 16)
		}
	case "F16":
		for i := range out {
			out[i] = halfToFloat(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	}
	return out
}

// halfToFloat converts an IEEE 754 binary16 value to float32.
func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0 && frac == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: frac · 2⁻²⁴
		v := float32(frac) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | frac<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | frac<<13)
}

// namedTensor is one F32 tensor to write.
type namedTensor struct {
	name  string
	shape []int64
	data  []float32
}

// writeSafetensors writes F32 tensors (in the order given) and metadata to w.
// The header is padded with spaces to a multiple of 8 bytes so that the data
// section is aligned, as the reference writer does.
func writeSafetensors(w io.Writer, meta map[string]string, tensors []namedTensor) error {
	hdr := make(map[string]any, len(tensors)+1)
	if len(meta) > 0 {
		hdr["__metadata__"] = meta
	}
	var pos int64
	for _, t := range tensors {
		end := pos + 4*int64(len(t.data))
		hdr[t.name] = tensorInfo{DType: "F32", Shape: t.shape, Offsets: [2]int64{pos, end}}
		pos = end
	}
	js, err := json.Marshal(hdr)
	if err != nil {
		return err
	}
	for len(js)%8 != 0 {
		js = append(js, ' ')
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(js)))
	bw.Write(lenBuf[:])
	bw.Write(js)
	var buf [4]byte
	for _, t := range tensors {
		for _, v := range t.data {
			binary.LittleEndian.PutUint32(buf[:], math.Float32bits(v))
			bw.Write(buf[:])
		}
	}
	return bw.Flush()
}
