package api

import (
	"bytes"
	"time"
	"unicode/utf8"
)

// decodeExposuresFast parses the common shape of a POST /v1/exposures body,
//
//	{"exposures": [{"experiment": "…", "unit": "…", "variant": "…", "ts": "…"}, …]}
//
// (fields in any order, plus in_holdout and holdout_version), appending to *dst,
// several times faster than encoding/json. It gives up (returns false) on
// anything else: string escapes, invalid UTF-8, unknown fields, numbers in an
// unusual form, malformed JSON. The caller then decodes with encoding/json, which
// yields the same values or the error message naming what is wrong, so the fast
// path never changes what is accepted.
//
// Per exposure it allocates nothing: unit ids are substrings of one copy of the
// body, experiment and variant names are shared with the previous equal ones,
// and a timestamp whose "YYYY-MM-DDTHH:MM:SS" matches the previous one is
// completed from its fraction (see tsCache).
func decodeExposuresFast(b []byte, dst *[]exposureIn) bool {
	p := fastParser{b: b, s: string(b)}
	p.ws()
	if !p.lit('{') {
		return false
	}
	p.ws()
	key, ok := p.rawString()
	if !ok || string(key) != "exposures" {
		return false
	}
	p.ws()
	if !p.lit(':') {
		return false
	}
	p.ws()
	if !p.lit('[') {
		return false
	}
	p.ws()
	out := (*dst)[:0]
	// Every exposure opens a '{' (so may a string): an upper bound, and one byte is
	// much quicker to count than a word.
	if n := bytes.Count(b, []byte{'{'}) - 1; n > 0 && cap(out) < n {
		out = make([]exposureIn, 0, n)
	}
	var names nameCache
	var tc tsCache
	if !p.lit(']') {
		for {
			var x exposureIn
			if !p.exposure(&x, &names, &tc) {
				return false
			}
			out = append(out, x)
			p.ws()
			if p.lit(',') {
				p.ws()
				continue
			}
			if p.lit(']') {
				break
			}
			return false
		}
	}
	p.ws()
	if !p.lit('}') {
		return false
	}
	p.ws()
	if p.i != len(p.b) {
		return false
	}
	*dst = out
	return true
}

type fastParser struct {
	b []byte
	s string // string(b), when substrings of it are wanted (decodeExposuresFast)
	i int
}

// str reads a string like rawString and returns it as a substring of p.s.
func (p *fastParser) str() (string, bool) {
	v, ok := p.rawString()
	if !ok {
		return "", false
	}
	end := p.i - 1
	return p.s[end-len(v) : end], true
}

// nameCache shares the strings of the few distinct experiment and variant names
// of a body.
type nameCache struct{ names []string }

func (c *nameCache) get(v []byte) string {
	for _, n := range c.names {
		if n == string(v) {
			return n
		}
	}
	n := string(v)
	if len(c.names) < 16 {
		c.names = append(c.names, n)
	}
	return n
}

// tsCache completes RFC 3339 UTC timestamps ("YYYY-MM-DDTHH:MM:SS[.fraction]Z")
// whose first 19 bytes equal those of the last timestamp time.Time.UnmarshalJSON
// parsed, from that timestamp's Unix second and the fraction. The result is the
// time.Time UnmarshalJSON would give; anything else takes UnmarshalJSON.
type tsCache struct {
	prefix [19]byte
	sec    int64
	ok     bool
}

// parse sets *t from q, a JSON string (quotes included), and reports success.
func (c *tsCache) parse(q []byte, t *time.Time) bool {
	v := q[1 : len(q)-1]
	if len(v) >= 20 && v[len(v)-1] == 'Z' && (v[19] == 'Z' || v[19] == '.') {
		if c.ok && string(v[:19]) == string(c.prefix[:]) {
			if ns, ok := fraction(v[19 : len(v)-1]); ok {
				*t = time.Unix(c.sec, ns).UTC()
				return true
			}
		}
		if err := t.UnmarshalJSON(q); err != nil {
			return false
		}
		if _, ok := fraction(v[19 : len(v)-1]); ok && t.Location() == time.UTC {
			copy(c.prefix[:], v[:19])
			c.sec, c.ok = t.Unix(), true
		}
		return true
	}
	return t.UnmarshalJSON(q) == nil
}

// fraction returns the nanoseconds of f, "" or "." and 1 to 9 digits.
func fraction(f []byte) (int64, bool) {
	if len(f) == 0 {
		return 0, true
	}
	if f[0] != '.' || len(f) < 2 || len(f) > 10 {
		return 0, false
	}
	var ns int64
	for _, d := range f[1:] {
		if d < '0' || d > '9' {
			return 0, false
		}
		ns = ns*10 + int64(d-'0')
	}
	for i := len(f) - 1; i < 9; i++ {
		ns *= 10
	}
	return ns, true
}

func (p *fastParser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *fastParser) lit(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *fastParser) word(w string) bool {
	if len(p.b)-p.i >= len(w) && string(p.b[p.i:p.i+len(w)]) == w {
		p.i += len(w)
		return true
	}
	return false
}

// rawString reads a string without escapes or control characters and returns
// its bytes (valid UTF-8), or false.
func (p *fastParser) rawString() ([]byte, bool) {
	if !p.lit('"') {
		return nil, false
	}
	start := p.i
	ascii := true
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			if !ascii && !utf8.Valid(s) {
				return nil, false
			}
			return s, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
		p.i++
	}
	return nil, false
}

func (p *fastParser) exposure(x *exposureIn, names *nameCache, tc *tsCache) bool {
	if !p.lit('{') {
		return false
	}
	p.ws()
	if p.lit('}') {
		return true
	}
	for {
		key, ok := p.rawString()
		if !ok {
			return false
		}
		p.ws()
		if !p.lit(':') {
			return false
		}
		p.ws()
		switch string(key) {
		case "experiment":
			s, ok := p.rawString()
			if !ok {
				return false
			}
			x.Experiment = names.get(s)
		case "unit":
			s, ok := p.str()
			if !ok {
				return false
			}
			x.Unit = s
		case "variant":
			s, ok := p.rawString()
			if !ok {
				return false
			}
			x.Variant = names.get(s)
		case "ts":
			if p.word("null") {
				break
			}
			start := p.i
			if _, ok := p.rawString(); !ok {
				return false
			}
			if !tc.parse(p.b[start:p.i], &x.TS) {
				return false
			}
		case "in_holdout":
			switch {
			case p.word("true"):
				x.InHoldout = true
			case p.word("false"):
				x.InHoldout = false
			case p.word("null"):
			default:
				return false
			}
		case "holdout_version":
			if p.word("null") {
				break
			}
			n, digits := 0, 0
			for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' && digits < 9 {
				n = n*10 + int(p.b[p.i]-'0')
				p.i++
				digits++
			}
			if digits == 0 || (digits > 1 && p.b[p.i-digits] == '0') {
				return false
			}
			if p.i < len(p.b) {
				switch p.b[p.i] {
				case ',', '}', ' ', '\t', '\n', '\r':
				default:
					return false // a fraction, exponent or overflow: let encoding/json judge
				}
			}
			x.HoldoutVersion = n
		default:
			return false
		}
		p.ws()
		if p.lit(',') {
			p.ws()
			continue
		}
		return p.lit('}')
	}
}

// decodeAssignFast parses the common shape of a POST /v1/assign body,
//
//	{"experiment": "…", "units": ["…", …], "expose": true}
//
// (fields in any order) into req, or gives up (returns false) on anything else,
// like decodeExposuresFast; the caller then decodes with encoding/json.
func decodeAssignFast(b []byte, req *assignBatchRequest) bool {
	p := fastParser{b: b}
	var out assignBatchRequest
	p.ws()
	if !p.lit('{') {
		return false
	}
	p.ws()
	if !p.lit('}') {
		for {
			key, ok := p.rawString()
			if !ok {
				return false
			}
			p.ws()
			if !p.lit(':') {
				return false
			}
			p.ws()
			switch string(key) {
			case "experiment":
				s, ok := p.rawString()
				if !ok {
					return false
				}
				out.Experiment = string(s)
			case "expose":
				switch {
				case p.word("true"):
					out.Expose = true
				case p.word("false"):
					out.Expose = false
				case p.word("null"):
				default:
					return false
				}
			case "units":
				if !p.lit('[') {
					return false
				}
				p.ws()
				if n := bytes.Count(b[p.i:], []byte{','}) + 1; cap(out.Units) < n {
					out.Units = make([]string, 0, n)
				}
				out.Units = out.Units[:0]
				if !p.lit(']') {
					for {
						s, ok := p.rawString()
						if !ok {
							return false
						}
						out.Units = append(out.Units, string(s))
						p.ws()
						if p.lit(',') {
							p.ws()
							continue
						}
						if p.lit(']') {
							break
						}
						return false
					}
				}
			default:
				return false
			}
			p.ws()
			if p.lit(',') {
				p.ws()
				continue
			}
			if p.lit('}') {
				break
			}
			return false
		}
	}
	p.ws()
	if p.i != len(p.b) {
		return false
	}
	*req = out
	return true
}
