package experiment

import (
	"errors"
	"fmt"
	"strings"
)

// Kind classifies an error so that transports can map it to a status code in one
// place (see api.statusOf) and callers can branch on it with KindOf.
type Kind uint8

// The error kinds. Their String forms are the stable "code" values of API errors.
const (
	Other            Kind = iota // unclassified; treated as Internal by transports
	Invalid                      // the request or data is malformed or breaks a rule
	NotFound                     // the named thing does not exist
	Conflict                     // the request contradicts the current state (e.g. a locked experiment)
	InsufficientData             // there is not enough data to compute the answer
	BudgetExceeded               // a privacy release would overspend its budget
	Unauthorized                 // no valid credentials
	Forbidden                    // valid credentials without the needed role
	TooLarge                     // a batch or body over its limit
	Unavailable                  // a dependency is down or locked (e.g. the database file is held)
	Internal                     // a bug or an unexpected failure
)

var kindNames = [...]string{
	Other:            "internal",
	Invalid:          "invalid",
	NotFound:         "not_found",
	Conflict:         "conflict",
	InsufficientData: "insufficient_data",
	BudgetExceeded:   "budget_exhausted",
	Unauthorized:     "unauthorized",
	Forbidden:        "forbidden",
	TooLarge:         "too_large",
	Unavailable:      "unavailable",
	Internal:         "internal",
}

// String returns the stable error code of k, e.g. "invalid" or "budget_exhausted".
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "internal"
}

// Error is Lift's error: the operation that failed, its kind, the offending field
// (a JSON path such as "variants[1].weight", empty when not about one field) and
// the underlying error or message.
type Error struct {
	Op    string // e.g. "store.CreateExperiment"
	Kind  Kind
	Field string
	Err   error
}

// E builds an *Error. Its arguments may be, in any order: a string (the op, only the
// first string), a Kind, a Field, or an error. A message for a new error is given as
// an error, e.g. E("registry.Create", Invalid, Field("coverage"), Errorf("must be in [0, 1], got %g", c)).
func E(args ...any) error {
	e := &Error{}
	for _, a := range args {
		switch v := a.(type) {
		case string:
			if e.Op == "" {
				e.Op = v
			}
		case Kind:
			e.Kind = v
		case Field:
			e.Field = string(v)
		case error:
			e.Err = v
		default:
			panic(fmt.Sprintf("experiment.E: bad argument %T", a))
		}
	}
	if e.Kind == Other {
		var inner *Error
		if errors.As(e.Err, &inner) {
			e.Kind = inner.Kind
			if e.Field == "" {
				e.Field = inner.Field
			}
		}
	}
	return e
}

// Field names the offending input field of an error built with E.
type Field string

// Errorf is fmt.Errorf, re-exported so callers of E need one import.
func Errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// Error formats the error as "op: field: message".
func (e *Error) Error() string {
	var b strings.Builder
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	if e.Field != "" {
		var inner *Error
		// Avoid repeating the field when the wrapped error already names it.
		if !errors.As(e.Err, &inner) || inner.Field != e.Field {
			b.WriteString(e.Field)
			b.WriteString(": ")
		}
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		b.WriteString(e.Kind.String())
	}
	return b.String()
}

// Unwrap returns the wrapped error.
func (e *Error) Unwrap() error { return e.Err }

// Message is the error without its op chain: what an API client and a CLI
// user are shown. Only the ops are dropped: the fields and the context the
// chain adds around a wrapped *Error ("a vs control: …") stay.
func (e *Error) Message() string {
	var msg string
	var inner *Error
	switch {
	case e.Err == nil:
		msg = e.Kind.String()
	case errors.As(e.Err, &inner):
		msg = e.Err.Error()
		if full := inner.Error(); strings.HasSuffix(msg, full) {
			msg = msg[:len(msg)-len(full)] + inner.Message()
		} else {
			msg = inner.Message()
		}
	default:
		msg = e.Err.Error()
	}
	if e.Field != "" && !strings.HasPrefix(msg, e.Field+": ") {
		msg = e.Field + ": " + msg
	}
	return msg
}

// KindOf returns the kind of the outermost *Error in err's chain that has one,
// or Internal when there is none (nil gives Other).
func KindOf(err error) Kind {
	if err == nil {
		return Other
	}
	for err != nil {
		var e *Error
		if !errors.As(err, &e) {
			break
		}
		if e.Kind != Other {
			return e.Kind
		}
		err = e.Err
	}
	return Internal
}

// Is reports whether err has kind k.
func Is(err error, k Kind) bool { return err != nil && KindOf(err) == k }
