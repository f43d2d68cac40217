package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiment"
)

// readBody reads the request body, at most Options.BodyLimit bytes; a longer body
// is a TooLarge error, and a JSON string holding a NUL character anywhere in it
// an Invalid error naming its path (refuseNUL).
func (s *Server) readBody(c echo.Context) ([]byte, error) {
	const op = "api.decode"
	r := c.Request()
	if r.ContentLength > s.opt.BodyLimit {
		return nil, experiment.E(op, experiment.TooLarge, experiment.Errorf("request body of %d bytes is over the limit of %d bytes", r.ContentLength, s.opt.BodyLimit))
	}
	body := http.MaxBytesReader(c.Response(), r.Body, s.opt.BodyLimit)
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	if _, err := buf.ReadFrom(body); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, experiment.E(op, experiment.TooLarge, experiment.Errorf("request body is over the limit of %d bytes", s.opt.BodyLimit))
		}
		if isTimeout(err) {
			return nil, experiment.E(op, experiment.Invalid, experiment.Errorf(
				"the request body did not arrive within %s (--read-timeout): send it at once", s.opt.BodyReadTimeout))
		}
		return nil, experiment.E(op, experiment.Invalid, experiment.Errorf("reading the request body: %v", err))
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get(echo.HeaderContentType))
	if err := refuseNUL(buf.Bytes(), isNDJSON(mt)); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// isNDJSON reports whether the media type mt is newline-delimited JSON.
func isNDJSON(mt string) bool {
	return mt == "application/x-ndjson" || mt == "application/ndjson" || mt == "application/jsonl"
}

// decode reads the JSON request body into dst. Malformed JSON, unknown fields,
// values of the wrong type and trailing data are Invalid errors that name the
// field or byte offset; a body over the limit is TooLarge.
func (s *Server) decode(c echo.Context, dst any) error {
	b, err := s.readBody(c)
	if err != nil {
		return err
	}
	return decodeJSON(b, dst)
}

// decodeJSON strictly decodes one JSON value from b into dst.
func decodeJSON(b []byte, dst any) error {
	const op = "api.decode"
	if len(bytes.TrimSpace(b)) == 0 {
		return experiment.E(op, experiment.Invalid, experiment.Errorf("empty request body: expected a JSON object"))
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return experiment.E(op, experiment.Invalid, experiment.Errorf("malformed JSON: unexpected data after the JSON value at byte offset %d", dec.InputOffset()))
	}
	return nil
}

// decodeError turns an encoding/json error into an Invalid error naming where the
// input went wrong.
func decodeError(err error) error {
	const op = "api.decode"
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return experiment.E(op, experiment.Invalid, experiment.Errorf("malformed JSON at byte offset %d: %s", se.Offset, strings.TrimPrefix(se.Error(), "json: ")))
	case errors.As(err, &te) && te.Type == durationType:
		field, msg, _ := experiment.DurationError(err)
		if field == "" {
			return experiment.E(op, experiment.Invalid, experiment.Errorf("%s", msg))
		}
		return experiment.E(op, experiment.Invalid, experiment.Field(field), experiment.Errorf("%s", msg))
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return experiment.E(op, experiment.Invalid, experiment.Errorf("request body must be a JSON %s, got %s", te.Type.Kind(), te.Value))
		}
		return experiment.E(op, experiment.Invalid, experiment.Field(field), experiment.Errorf("must be of type %s, got %s", jsonTypeName(te.Type.Kind().String()), te.Value))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return experiment.E(op, experiment.Invalid, experiment.Errorf("malformed JSON: unexpected end of the body"))
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return experiment.E(op, experiment.Invalid, experiment.Field(strings.Trim(name, `"`)), experiment.Errorf("unknown field"))
	}
	var le *experiment.Error
	if errors.As(err, &le) {
		return experiment.E(op, experiment.Invalid, err)
	}
	return experiment.E(op, experiment.Invalid, experiment.Errorf("invalid JSON: %s", strings.TrimPrefix(msg, "json: ")))
}

func jsonTypeName(goKind string) string {
	switch goKind {
	case "float64", "float32", "int", "int64", "int32", "uint", "uint64":
		return "number"
	case "slice", "array":
		return "array"
	case "struct", "map":
		return "object"
	case "bool":
		return "boolean"
	}
	return goKind
}
