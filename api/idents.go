package api

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiment"
)

// escapedNUL is how a NUL character can appear in JSON text: only escaped (a raw
// control character inside a string is malformed JSON).
var escapedNUL = []byte(`\u0000`)

// refuseNUL returns an Invalid error naming the JSON path of the first string
// (object key or value) of body that holds a NUL character, or nil when none
// does. No field of any route may hold one: the DuckDB driver cuts strings at
// NUL, so "victim\u0000x" would be stored (and counted) as "victim". With
// lines set, body is NDJSON and the path starts with "line N". The common case,
// no "\u0000" in the body at all, is one bytes.Index.
func refuseNUL(body []byte, lines bool) error {
	const op = "api.decode"
	at := realEscapedNUL(body)
	if at < 0 {
		return nil
	}
	if lines {
		line, start := 1, 0
		for i, c := range body {
			if c != '\n' {
				continue
			}
			if i > at {
				break
			}
			line, start = line+1, i+1
		}
		end := bytes.IndexByte(body[start:], '\n')
		if end < 0 {
			end = len(body) - start
		}
		if path, ok := nulPath(body[start : start+end]); ok {
			return experiment.E(op, experiment.Invalid, experiment.Field(joinPath("line "+strconv.Itoa(line), path)), errNUL)
		}
		return experiment.E(op, experiment.Invalid, experiment.Field("line "+strconv.Itoa(line)), errNUL)
	}
	if path, ok := nulPath(body); ok {
		return experiment.E(op, experiment.Invalid, experiment.Field(path), errNUL)
	}
	return experiment.E(op, experiment.Invalid, experiment.Errorf("a JSON string holds a NUL character (\\u0000) at byte offset %d; no field may hold one", at))
}

var errNUL = experiment.Errorf("must not contain a NUL character (\\u0000)")

// realEscapedNUL returns the offset of the first \u0000 of b that is an escape
// (not the text after an escaped backslash, as in "\\u0000"), or -1.
func realEscapedNUL(b []byte) int {
	off := 0
	for {
		i := bytes.Index(b[off:], escapedNUL)
		if i < 0 {
			return -1
		}
		i += off
		n := 0 // backslashes just before this one
		for j := i - 1; j >= 0 && b[j] == '\\'; j-- {
			n++
		}
		if n%2 == 0 {
			return i
		}
		off = i + 1
	}
}

// nulPath walks the JSON value of b and returns the path of the first key or
// string value that holds a NUL ("" for the top-level value); ok is false when
// b is not JSON or holds none.
func nulPath(b []byte) (path string, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	type frame struct {
		obj    bool
		key    string // obj: the current key
		index  int    // array: the current index
		wanted bool   // obj: the next token is a key
	}
	var stack []frame
	pathOf := func(leaf string) string {
		var sb strings.Builder
		for i, f := range stack {
			if leaf != "" && i == len(stack)-1 {
				break // leaf is a key of the innermost object
			}
			if f.obj {
				if sb.Len() > 0 {
					sb.WriteByte('.')
				}
				sb.WriteString(f.key)
			} else {
				sb.WriteString("[" + strconv.Itoa(f.index) + "]")
			}
		}
		if leaf != "" {
			if sb.Len() > 0 {
				sb.WriteByte('.')
			}
			sb.WriteString(leaf)
		}
		return sb.String()
	}
	// value is called after each complete value inside the top frame.
	value := func() {
		if n := len(stack); n > 0 {
			if stack[n-1].obj {
				stack[n-1].wanted = true
			} else {
				stack[n-1].index++
			}
		}
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		top := len(stack) - 1
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				stack = append(stack, frame{obj: true, wanted: true})
			case '[':
				stack = append(stack, frame{})
			default:
				stack = stack[:top]
				value()
			}
		case string:
			if top >= 0 && stack[top].obj && stack[top].wanted {
				if strings.IndexByte(t, 0) >= 0 {
					return pathOf(strconv.Quote(t)), true
				}
				stack[top].key, stack[top].wanted = t, false
				continue
			}
			if strings.IndexByte(t, 0) >= 0 {
				return pathOf(""), true
			}
			value()
		default:
			value()
		}
		if len(stack) == 0 && !dec.More() {
			return "", false
		}
	}
}

func joinPath(prefix, path string) string {
	if path == "" {
		return prefix
	}
	if path[0] == '[' {
		return prefix + path
	}
	return prefix + "." + path
}

// checkParams refuses control characters and invalid UTF-8 in path parameters
// and query parameters (names and values), with 400 naming the parameter: every
// one of them is an identifier, a number, a time or a flag, and none may carry
// a NUL into the database.
func (s *Server) checkParams(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		const op = "api.params"
		for i, name := range c.ParamNames() {
			if p := experiment.IdentProblem(c.ParamValues()[i]); p != "" {
				return experiment.E(op, experiment.Invalid, experiment.Field(name), experiment.Errorf("%s", p))
			}
		}
		if c.Request().URL.RawQuery != "" {
			for name, vs := range c.QueryParams() {
				if p := experiment.IdentProblem(name); p != "" {
					return experiment.E(op, experiment.Invalid, experiment.Field(strconv.Quote(name)), experiment.Errorf("query parameter name %s", p))
				}
				for _, v := range vs {
					if p := experiment.IdentProblem(v); p != "" {
						return experiment.E(op, experiment.Invalid, experiment.Field(name), experiment.Errorf("%s", p))
					}
				}
			}
		}
		return next(c)
	}
}
