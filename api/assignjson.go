package api

import (
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/liftlab/lift/experiment"
)

// The assignment routes write their answers with these append functions instead
// of encoding/json: a batch of 10,000 answers is the hot path of the API. The
// output is byte-for-byte what encoding/json.Marshal writes for the same values
// (a test checks it), so clients see one format.

// appendBatch appends the JSON of an assignBatchResponse.
func appendBatch(b []byte, key string, exposed int, as []experiment.Assignment) []byte {
	b = append(b, `{"experiment":`...)
	b = appendString(b, key)
	b = append(b, `,"exposed":`...)
	b = strconv.AppendInt(b, int64(exposed), 10)
	b = append(b, `,"assignments":[`...)
	for i := range as {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendAssignment(b, &as[i])
	}
	return append(b, "]}"...)
}

// appendAssignment appends the JSON of one experiment.Assignment.
func appendAssignment(b []byte, a *experiment.Assignment) []byte {
	b = append(b, `{"experiment":`...)
	b = appendString(b, a.Experiment)
	b = append(b, `,"unit":`...)
	b = appendString(b, a.Unit)
	b = append(b, `,"variant":`...)
	if a.Variant == nil {
		b = append(b, "null"...)
	} else {
		b = appendString(b, *a.Variant)
	}
	b = append(b, `,"in_experiment":`...)
	b = strconv.AppendBool(b, a.InExperiment)
	b = append(b, `,"bucket":`...)
	b = appendFloat(b, a.Bucket)
	b = append(b, `,"hash_version":`...)
	b = strconv.AppendInt(b, int64(a.HashVersion), 10)
	b = append(b, `,"holdout":`...)
	if h := a.Holdout; h == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, `{"name":`...)
		b = appendString(b, h.Name)
		b = append(b, `,"version":`...)
		b = strconv.AppendInt(b, int64(h.Version), 10)
		b = append(b, `,"in_holdout":`...)
		b = strconv.AppendBool(b, h.InHoldout)
		b = append(b, '}')
	}
	return append(b, '}')
}

// appendFloat writes f as encoding/json does: the shortest representation, in
// exponent form only below 1e-6 or from 1e21, with a two-digit minimum exponent
// trimmed (1e-07 becomes 1e-7). NaN and infinities cannot occur in assignments.
func appendFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string the way encoding/json does by default:
// control characters, '"', '\\', and the HTML-sensitive '<', '>', '&' escaped,
// U+2028 and U+2029 escaped, invalid UTF-8 replaced by U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
