package store

import (
	"context"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
)

// TestConsoleSessions: a session is found by its id until it expires or ends;
// the table holds the id's hash, and starting a session drops expired ones.
func TestConsoleSessions(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	db, _ := openTest(t, c)
	now := c.Now()
	v := db.DataVersion()
	if err := db.StartConsoleSession(ctx, "id-a", ConsoleSession{KeyID: "key_1", CSRF: "tok-a", Expires: now.Add(time.Hour)}, now); err != nil {
		t.Fatal(err)
	}
	if err := db.StartConsoleSession(ctx, "id-b", ConsoleSession{KeyID: "key_2", CSRF: "tok-b", Expires: now.Add(2 * time.Hour)}, now); err != nil {
		t.Fatal(err)
	}
	if got := db.DataVersion(); got != v {
		t.Errorf("signing in changed DataVersion %v → %v: it would drop the cached results", v, got)
	}
	if n := count(t, db, `SELECT count(*) FROM console_sessions WHERE hash IN ('id-a', 'id-b')`); n != 0 {
		t.Errorf("%d sessions stored under their raw id", n)
	}
	for _, tc := range []struct {
		id    string
		at    time.Duration
		key   string // "" for NotFound
		csrf  string
		label string
	}{
		{"id-a", 0, "key_1", "tok-a", "a, at once"},
		{"id-b", 0, "key_2", "tok-b", "b, at once"},
		{"id-x", 0, "", "", "an unknown id"},
		{"id-a", time.Hour - time.Second, "key_1", "tok-a", "a, a second before it expires"},
		{"id-a", time.Hour, "", "", "a, when it expires"},
		{"id-b", time.Hour, "key_2", "tok-b", "b, an hour in"},
	} {
		se, err := db.GetConsoleSession(ctx, tc.id, now.Add(tc.at))
		switch {
		case tc.key == "" && experiment.KindOf(err) != experiment.NotFound:
			t.Errorf("%s: %+v %v, want NotFound", tc.label, se, err)
		case tc.key != "" && (err != nil || se.KeyID != tc.key || se.CSRF != tc.csrf):
			t.Errorf("%s: %+v %v, want key %s", tc.label, se, err, tc.key)
		}
	}
	if n := count(t, db, `SELECT count(*) FROM console_sessions`); n != 1 {
		t.Errorf("%d sessions kept after a's expiry was seen, want 1", n)
	}
	if err := db.EndConsoleSession(ctx, "id-b"); err != nil {
		t.Fatal(err)
	}
	if err := db.EndConsoleSession(ctx, "id-b"); err != nil {
		t.Errorf("ending twice: %v", err)
	}
	if _, err := db.GetConsoleSession(ctx, "id-b", now); experiment.KindOf(err) != experiment.NotFound {
		t.Errorf("after the end: %v, want NotFound", err)
	}
	// Expired sessions nobody reads again are dropped at the next sign-in.
	if err := db.StartConsoleSession(ctx, "id-c", ConsoleSession{KeyID: "key_1", CSRF: "c", Expires: now.Add(time.Minute)}, now); err != nil {
		t.Fatal(err)
	}
	later := now.Add(time.Hour)
	if err := db.StartConsoleSession(ctx, "id-d", ConsoleSession{KeyID: "key_1", CSRF: "d", Expires: later.Add(time.Hour)}, later); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, `SELECT count(*) FROM console_sessions`); n != 1 {
		t.Errorf("%d sessions after a sign-in past c's expiry, want 1", n)
	}
}
