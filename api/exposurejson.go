package api

import (
	"bytes"
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
func decodeExposuresFast(b []byte, dst *[]exposureIn) bool {
	p := fastParser{b: b}
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
	if n := bytes.Count(b, []byte(`"unit"`)); n > 0 && cap(out) < n {
		out = make([]exposureIn, 0, n)
	}
	var lastExp string
	if !p.lit(']') {
		for {
			var x exposureIn
			if !p.exposure(&x, &lastExp) {
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
	i int
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

func (p *fastParser) exposure(x *exposureIn, lastExp *string) bool {
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
			if string(s) != *lastExp {
				*lastExp = string(s)
			}
			x.Experiment = *lastExp
		case "unit":
			s, ok := p.rawString()
			if !ok {
				return false
			}
			x.Unit = string(s)
		case "variant":
			s, ok := p.rawString()
			if !ok {
				return false
			}
			x.Variant = string(s)
		case "ts":
			if p.word("null") {
				break
			}
			start := p.i
			if _, ok := p.rawString(); !ok {
				return false
			}
			if err := x.TS.UnmarshalJSON(p.b[start:p.i]); err != nil {
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
