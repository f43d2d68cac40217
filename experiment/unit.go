package experiment

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strconv"
	"time"
)

// Layer is a mutual-exclusion layer (a GrowthBook "namespace"): every unit hashes
// (hash v1 of "__"+name) to a point of [0, 1), and experiments of the layer occupy
// disjoint ranges of it, so a unit is in at most one of them.
type Layer struct {
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}

// Validate checks the layer's name.
func (l *Layer) Validate() error {
	if !ValidKey(l.Name) {
		return invalid("layer.Validate", "name", "must be 1-128 letters, digits, '_', '.' or '-', got %q", l.Name)
	}
	return nil
}

// Holdout is a permanent holdout: a named slice of all units (Fraction, e.g. 0.05)
// that is kept out of every experiment or journey naming it, so that it measures
// their long-run effect. Its membership hashes on Salt; a rotation starts a new
// Version with a new salt, and exposures record the version they were made under.
type Holdout struct {
	Name           string           `json:"name"`
	Description    string           `json:"description,omitempty"`
	Fraction       float64          `json:"fraction"`
	Salt           string           `json:"salt"`                      // current version's salt
	Version        int              `json:"version"`                   // current version, from 1
	RotationPeriod Duration         `json:"rotation_period,omitempty"` // 0: rotate by hand only
	CreatedAt      time.Time        `json:"created_at"`
	RotatedAt      time.Time        `json:"rotated_at"` // start of the current version
	Versions       []HoldoutVersion `json:"versions,omitempty"`
}

// HoldoutVersion is one cohort of a holdout: the salt it hashed with and when it was current.
type HoldoutVersion struct {
	Version int        `json:"version"`
	Salt    string     `json:"salt"`
	Start   time.Time  `json:"start"`
	End     *time.Time `json:"end,omitempty"`
}

// Validate checks the holdout's name and fraction.
func (h *Holdout) Validate() error {
	const op = "holdout.Validate"
	if !ValidKey(h.Name) {
		return invalid(op, "name", "must be 1-128 letters, digits, '_', '.' or '-', got %q", h.Name)
	}
	if !(h.Fraction > 0 && h.Fraction < 1) {
		return invalid(op, "fraction", "must be in (0, 1), got %g", h.Fraction)
	}
	if h.RotationPeriod < 0 {
		return invalid(op, "rotation_period", "must not be negative, got %s", h.RotationPeriod)
	}
	if h.RotationPeriod != 0 && time.Duration(h.RotationPeriod) < MinRotationPeriod {
		return invalid(op, "rotation_period", "must be at least %s (a holdout measures long-run effects), got %s; leave it out to rotate by hand only",
			Duration(MinRotationPeriod), h.RotationPeriod)
	}
	return nil
}

// MinRotationPeriod is the shortest automatic rotation period of a holdout.
const MinRotationPeriod = Day

// Duration is a time.Duration that reads and writes JSON as a duration string:
// a sequence of numbers with units ("90d", "36h", "1h30min", "2w", "120ms") or a
// number of seconds. See ParseDuration for the units.
type Duration time.Duration

// MarshalJSON writes the duration in its largest whole unit ("90d", "36h",
// "15min", "30s", "120ms"), so that a duration given as "90d" is answered as
// "90d", not "2160h0m0s"; see Duration.String.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// String writes the duration in the largest of d, h, min, s and ms in which it
// is a whole number ("90d", "36h", "15min"); other values (fractions of a
// millisecond, or of a second beyond a minute) in Go's notation, which
// ParseDuration reads back ("1h30m0.5s").
func (d Duration) String() string {
	v := time.Duration(d)
	if v == 0 {
		return "0s"
	}
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{Day, "d"}, {time.Hour, "h"}, {time.Minute, "min"}, {time.Second, "s"}, {time.Millisecond, "ms"}} {
		if v%u.unit == 0 {
			return strconv.FormatInt(int64(v/u.unit), 10) + u.name
		}
	}
	return v.String()
}

// Day and Week are the lengths of the "d" and "w" duration units.
const (
	Day  = 24 * time.Hour
	Week = 7 * Day
)

// UnmarshalJSON reads a duration string (ParseDuration) or a number of seconds.
// Its errors are *json.UnmarshalTypeError whose Value is the explanation, so
// that encoding/json adds the field's path to them (see DurationError).
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var secs float64
		if err2 := json.Unmarshal(b, &secs); err2 != nil || math.IsNaN(secs) || math.Abs(secs) > float64(math.MaxInt64/int64(time.Second)) {
			return durationError(`must be a duration string such as "90d" or "36h", or a number of seconds`)
		}
		*d = Duration(secs * float64(time.Second))
		return nil
	}
	v, err := ParseDuration(s)
	if err != nil {
		return durationError(err.Error())
	}
	*d = v
	return nil
}

func durationError(msg string) error {
	return &json.UnmarshalTypeError{Value: msg, Type: reflect.TypeFor[Duration]()}
}

// DurationError returns the explanation of a Duration's decoding error, with the
// path of the field encoding/json found it in ("rotation_period", "params.window"),
// and false for other errors.
func DurationError(err error) (field, msg string, ok bool) {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) || te.Type != reflect.TypeFor[Duration]() {
		return "", "", false
	}
	return te.Field, te.Value, true
}

// durationUnits are the units ParseDuration reads. "m" is not among them on its
// own: people write "1m" for a minute and for a month alike (see ParseDuration).
var durationUnits = map[string]time.Duration{
	"ns": time.Nanosecond, "us": time.Microsecond, "µs": time.Microsecond, "μs": time.Microsecond,
	"ms": time.Millisecond, "s": time.Second, "min": time.Minute, "h": time.Hour, "d": Day, "w": Week,
}

// ParseDuration parses a duration: one or more numbers (a decimal fraction is
// allowed) each followed by a unit, ns, us (µs), ms, s, min, h, d (24 h) or w
// (7 d), with an optional leading sign: "90d", "2w", "36h", "1h30min", "120ms".
//
// The unit "m" is ambiguous (a minute to Go, a month to many people) and is
// refused with a message saying what to write, except between hours and seconds,
// where it can only mean minutes ("1h30m", "5m30s", Go's own "2160h0m0s").
// Months and years ("mo", "M", "y") are refused: their length varies; write days.
func ParseDuration(s string) (Duration, error) {
	orig := s
	bad := func(format string, args ...any) (Duration, error) {
		return 0, Errorf("invalid duration %q: "+format, append([]any{orig}, args...)...)
	}
	if s == "" {
		return bad("want e.g. \"90d\", \"36h\" or \"15min\"")
	}
	neg := false
	if s[0] == '-' || s[0] == '+' {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "0" {
		return 0, nil
	}
	type part struct {
		num  string
		unit string
	}
	var parts []part
	for s != "" {
		i := 0
		for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
			i++
		}
		if i == 0 {
			return bad("want a number before each unit, e.g. \"90d\" or \"1h30min\"")
		}
		j := i
		for j < len(s) && !(s[j] >= '0' && s[j] <= '9' || s[j] == '.') {
			j++
		}
		parts = append(parts, part{s[:i], s[i:j]})
		s = s[j:]
	}
	var total int64 // nanoseconds; whole numbers are added exactly
	for k, p := range parts {
		unit := p.unit
		switch unit {
		case "":
			return bad("%s has no unit; want one of ns, us, ms, s, min, h, d, w", p.num)
		case "m":
			hoursBefore := k > 0 && parts[k-1].unit == "h"
			secondsAfter := k+1 < len(parts) && parts[k+1].unit == "s"
			if !hoursBefore && !secondsAfter {
				return bad("the unit \"m\" is ambiguous: write \"%smin\" for minutes, or days (\"30d\") for about a month", p.num)
			}
			unit = "min"
		case "mo", "M", "mon", "month", "months", "y", "yr", "year", "years":
			return bad("months and years vary in length: write days (\"30d\", \"365d\") or weeks (\"4w\")")
		}
		u, ok := durationUnits[unit]
		if !ok {
			return bad("unknown unit %q; want one of ns, us, ms, s, min, h, d, w", p.unit)
		}
		tooLong := func() (Duration, error) {
			return bad("longer than %dd, the longest duration", math.MaxInt64/int64(Day))
		}
		var add int64
		if n, err := strconv.ParseInt(p.num, 10, 64); err == nil {
			if n > math.MaxInt64/int64(u) {
				return tooLong()
			}
			add = n * int64(u)
		} else {
			v, err := strconv.ParseFloat(p.num, 64)
			if err != nil {
				return bad("%q is not a number", p.num)
			}
			if v*float64(u) >= math.MaxInt64 {
				return tooLong()
			}
			add = int64(v * float64(u))
		}
		if total > math.MaxInt64-add {
			return tooLong()
		}
		total += add
	}
	if neg {
		total = -total
	}
	return Duration(time.Duration(total)), nil
}

// HoldoutAssignment says whether a unit is in a holdout, and under which version.
type HoldoutAssignment struct {
	Name      string `json:"name"`
	Version   int    `json:"version"`
	InHoldout bool   `json:"in_holdout"`
}

// Assignment is the auditable answer to "which variant does this unit get":
// enough to recompute it later from the hash.
type Assignment struct {
	Experiment   string             `json:"experiment"`
	Unit         string             `json:"unit"`
	Variant      *string            `json:"variant"` // nil when not in the experiment
	VariantIndex int                `json:"-"`       // -1 when not in the experiment
	InExperiment bool               `json:"in_experiment"`
	Bucket       float64            `json:"bucket"` // the hash value in [0, 1) the variant was chosen with
	HashVersion  int                `json:"hash_version"`
	Holdout      *HoldoutAssignment `json:"holdout"` // nil when the experiment names no holdout
}

// Exposure records that a unit was shown a variant (or, in a holdout, the control
// experience). Exposures are the denominators of every analysis.
type Exposure struct {
	Experiment     string    `json:"experiment"`
	Unit           string    `json:"unit"`
	Variant        string    `json:"variant"` // empty for holdout units
	TS             time.Time `json:"ts"`
	InHoldout      bool      `json:"in_holdout,omitempty"`
	HoldoutVersion int       `json:"holdout_version,omitempty"`
	Source         string    `json:"source,omitempty"` // "assign", "client" or "journey"
}

// Event is an outcome event sent by a growth team. EventID makes ingest idempotent.
type Event struct {
	EventID    string          `json:"event_id"`
	Unit       string          `json:"unit"`
	Type       string          `json:"type"`
	TS         time.Time       `json:"ts"`
	Value      float64         `json:"value"`
	Properties json.RawMessage `json:"properties,omitempty"`
}

// Role is what an API key may do.
type Role string

// The roles. Admin may do everything; analyst reads everything; viewer reads
// summaries and differentially private results only; ingest writes exposures and events.
const (
	RoleAdmin   Role = "admin"
	RoleAnalyst Role = "analyst"
	RoleViewer  Role = "viewer"
	RoleIngest  Role = "ingest"
)

// Valid reports whether r is one of the four roles.
func (r Role) Valid() bool {
	switch r {
	case RoleAdmin, RoleAnalyst, RoleViewer, RoleIngest:
		return true
	}
	return false
}

// Allows reports whether a key with role r may call an endpoint that requires need.
// Admin allows everything, analyst allows analyst and viewer endpoints, viewer and
// ingest allow only their own.
func (r Role) Allows(need Role) bool {
	switch r {
	case RoleAdmin:
		return true
	case RoleAnalyst:
		return need == RoleAnalyst || need == RoleViewer
	default:
		return r == need
	}
}

// SeesExact reports whether the role may see exact (not differentially private) numbers.
func (r Role) SeesExact() bool { return r == RoleAdmin || r == RoleAnalyst }

// APIKey is a stored API key. Only a hash of the secret is kept.
type APIKey struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Role      Role       `json:"role"`
	Prefix    string     `json:"prefix"` // first characters of the secret, to recognise it
	Hash      string     `json:"-"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// AuditEntry records one change to the registry: who, when, what, before and after.
type AuditEntry struct {
	ID     int64           `json:"id"`
	At     time.Time       `json:"at"`
	Actor  string          `json:"actor"`  // the API key's name (or "system")
	Action string          `json:"action"` // e.g. "experiment.create", "experiment.start"
	Entity string          `json:"entity"` // "experiment", "holdout", "layer", "metric", ...
	Key    string          `json:"key"`
	Before json.RawMessage `json:"before,omitempty"`
	After  json.RawMessage `json:"after,omitempty"`
}
