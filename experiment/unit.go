package experiment

import (
	"encoding/json"
	"math"
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
		return invalid(op, "rotation_period", "must not be negative")
	}
	return nil
}

// Duration is a time.Duration that reads and writes JSON as a Go duration string
// ("2160h") or a number of days ("90d").
type Duration time.Duration

// MarshalJSON writes the duration as a string such as "2160h0m0s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads "90d", "36h", "15m" or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var secs float64
		if err2 := json.Unmarshal(b, &secs); err2 != nil {
			return Errorf("duration must be a string such as \"90d\" or \"36h\"")
		}
		*d = Duration(secs * float64(time.Second))
		return nil
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// ParseDuration parses a Go duration or a whole number of days written "Nd".
func ParseDuration(s string) (Duration, error) {
	if n := len(s); n > 1 && s[n-1] == 'd' {
		const maxDays = int(math.MaxInt64 / int64(24*time.Hour)) // 106,751 days: time.Duration's range
		days := 0
		for _, c := range s[:n-1] {
			if c < '0' || c > '9' {
				return 0, Errorf("invalid duration %q", s)
			}
			if days = days*10 + int(c-'0'); days > maxDays {
				return 0, Errorf("invalid duration %q: at most %dd", s, maxDays)
			}
		}
		return Duration(time.Duration(days) * 24 * time.Hour), nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, Errorf("invalid duration %q: want e.g. \"90d\" or \"36h\"", s)
	}
	return Duration(v), nil
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
