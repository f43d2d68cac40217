package experiment

import (
	"errors"
	"testing"
	"time"
)

func TestRoleAllows(t *testing.T) {
	roles := []Role{RoleAdmin, RoleAnalyst, RoleViewer, RoleIngest}
	// want[r][need]: admin reaches everything, analyst analyst and viewer routes,
	// viewer and ingest only their own.
	want := map[Role]map[Role]bool{
		RoleAdmin:   {RoleAdmin: true, RoleAnalyst: true, RoleViewer: true, RoleIngest: true},
		RoleAnalyst: {RoleAnalyst: true, RoleViewer: true},
		RoleViewer:  {RoleViewer: true},
		RoleIngest:  {RoleIngest: true},
	}
	for _, r := range roles {
		for _, need := range roles {
			if got := r.Allows(need); got != want[r][need] {
				t.Errorf("%s.Allows(%s) = %v, want %v", r, need, got, want[r][need])
			}
		}
	}
	for _, r := range roles {
		if got, want := r.SeesExact(), r == RoleAdmin || r == RoleAnalyst; got != want {
			t.Errorf("%s.SeesExact() = %v", r, got)
		}
	}
	if Role("owner").Valid() {
		t.Error(`Role("owner") is valid`)
	}
}

func TestParseDuration(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"30d", 30 * 24 * time.Hour, true},
		{"0d", 0, true},
		{"36h", 36 * time.Hour, true},
		{"1h30m", 90 * time.Minute, true},
		{"-1h", -time.Hour, true},
		{"d", 0, false},
		{"3.5d", 84 * time.Hour, true},
		{"-2d", -48 * time.Hour, true},
		{"1w", 7 * 24 * time.Hour, true},
		{"2w3d", 17 * 24 * time.Hour, true},
		{"15min", 15 * time.Minute, true},
		{"1h30min", 90 * time.Minute, true},
		{"5m30s", 330 * time.Second, true},       // "m" before seconds can only be minutes
		{"2160h0m0s", 90 * 24 * time.Hour, true}, // Go's notation, as stored before
		{"120ms", 120 * time.Millisecond, true},
		{"0", 0, true},
		{"1m", 0, false},  // a minute or a month: refused
		{"30m", 0, false}, // likewise
		{"1mo", 0, false}, // months vary in length
		{"1y", 0, false},
		{"1", 0, false}, // no unit
		{"1x", 0, false},
		{"1..5h", 0, false},
		{"", 0, false},
		{"106751d", 106751 * 24 * time.Hour, true},
		{"106752d", 0, false},               // beyond time.Duration's range
		{"99999999999999999999d", 0, false}, // would overflow int
	} {
		got, err := ParseDuration(c.in)
		if (err == nil) != c.ok || (c.ok && time.Duration(got) != c.want) {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v (ok %v)", c.in, time.Duration(got), err, c.want, c.ok)
		}
	}
}

// TestDurationString: durations are written in their largest whole unit, and
// what is written reads back as the same duration.
func TestDurationString(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{90 * 24 * time.Hour, "90d"},
		{14 * 24 * time.Hour, "14d"},
		{36 * time.Hour, "36h"},
		{15 * time.Minute, "15min"},
		{90 * time.Second, "90s"},
		{120 * time.Millisecond, "120ms"},
		{0, "0s"},
		{-time.Hour, "-1h"},
		{time.Hour + 500*time.Microsecond, "1h0m0.0005s"},
	} {
		got := Duration(c.d).String()
		if got != c.want {
			t.Errorf("Duration(%v).String() = %q, want %q", c.d, got, c.want)
		}
		back, err := ParseDuration(got)
		if err != nil || time.Duration(back) != c.d {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", got, time.Duration(back), err, c.d)
		}
	}
}

func TestErrorFormatting(t *testing.T) {
	inner := E("store.Create", Invalid, Field("variants[1].weight"), Errorf("must be in [0, 1], got 1.5"))
	outer := E("api.createExperiment", inner)
	if KindOf(outer) != Invalid || !Is(outer, Invalid) {
		t.Errorf("kind of the wrapped error: %v", KindOf(outer))
	}
	var e *Error
	if !errors.As(outer, &e) {
		t.Fatal("not an *Error")
	}
	if got, want := e.Message(), "variants[1].weight: must be in [0, 1], got 1.5"; got != want {
		t.Errorf("Message() = %q, want %q", got, want)
	}
	if got, want := outer.Error(), "api.createExperiment: store.Create: variants[1].weight: must be in [0, 1], got 1.5"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if KindOf(errors.New("plain")) != Internal || KindOf(nil) != Other {
		t.Error("KindOf of a plain error must be Internal, of nil Other")
	}
}

func TestShareLinkLive(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	l := &ShareLink{CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	for _, c := range []struct {
		at   time.Time
		want bool
	}{{t0, true}, {t0.Add(time.Hour - time.Nanosecond), true}, {t0.Add(time.Hour), false}} {
		if got := l.Live(c.at); got != c.want {
			t.Errorf("Live(%s) = %v, want %v", c.at, got, c.want)
		}
	}
	l.RevokedAt = &t0
	if l.Live(t0) {
		t.Error("a revoked link is live")
	}
}

func TestRangeOverlaps(t *testing.T) {
	a := Range{Start: 0, End: 0.5}
	for _, c := range []struct {
		b    Range
		want bool
	}{
		{Range{Start: 0.5, End: 1}, false}, // half-open: touching is not overlapping
		{Range{Start: 0.4, End: 0.6}, true},
		{Range{Start: 0, End: 0.5}, true},
		{Range{Start: 0.6, End: 0.7}, false},
	} {
		if got := a.Overlaps(c.b); got != c.want || c.b.Overlaps(a) != c.want {
			t.Errorf("%v overlaps %v = %v, want %v (both ways)", a, c.b, got, c.want)
		}
	}
	if !a.Contains(0) || a.Contains(0.5) {
		t.Error("Contains must be half-open [start, end)")
	}
}

// TestMessageKeepsContext: Message drops only the ops; the fields and the
// words the chain adds around a wrapped *Error stay, so "lift analyze
// --covariates" names its flag and the comparison (issue 14, defect B).
func TestMessageKeepsContext(t *testing.T) {
	singular := E("analysis.LinRegression", Invalid, Errorf("singular design: a covariate is constant or collinear"))
	fielded := E("analysis", Invalid, Field("x"), Errorf("is constant"))
	for _, c := range []struct {
		name string
		err  *Error
		want string
	}{
		{"context around a wrapped error", E("analyze", Field("--covariates"), Errorf("a vs control: %w", singular)).(*Error),
			"--covariates: a vs control: singular design: a covariate is constant or collinear"},
		{"outer field over an inner one", E("analyze", Field("--covariates"), fielded).(*Error), "--covariates: x: is constant"},
		{"same field once", E("api", Field("x"), fielded).(*Error), "x: is constant"},
		{"ops only", E("api", E("store", fielded)).(*Error), "x: is constant"},
		{"plain error", E("api", Field("limit"), errors.New("not a number")).(*Error), "limit: not a number"},
		{"kind only", E("api", NotFound).(*Error), NotFound.String()},
	} {
		if got := c.err.Message(); got != c.want {
			t.Errorf("%s: Message() = %q, want %q", c.name, got, c.want)
		}
	}
}
