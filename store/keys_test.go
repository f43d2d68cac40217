package store

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/liftlab/lift/experiment"
)

var secretPattern = regexp.MustCompile(`^lift_[a-z2-7]{32}$`)

func TestKeys(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t, newClock())
	secret, k, err := db.CreateKey(ctx, "alice", "etl", experiment.RoleIngest)
	if err != nil {
		t.Fatal(err)
	}
	if !secretPattern.MatchString(secret) || k.Role != experiment.RoleIngest || !strings.HasPrefix(secret, k.Prefix) {
		t.Errorf("CreateKey: secret %q, key %+v", secret, k)
	}
	// Only the SHA-256 is stored: the secret appears nowhere in the table.
	if n := count(t, db, `SELECT count(*) FROM api_keys WHERE hash = ? OR id = ? OR prefix = ? OR name = ?`,
		secret, secret, secret, secret); n != 0 {
		t.Errorf("secret stored in clear")
	}
	if n := count(t, db, `SELECT count(*) FROM api_keys WHERE hash = sha256(?)`, secret); n != 1 {
		t.Errorf("stored hash is not DuckDB's sha256 of the secret")
	}
	for i := 0; i < 2; i++ { // the second call is served by the cache
		got, err := db.Authenticate(ctx, secret)
		if err != nil || got.ID != k.ID || got.Role != experiment.RoleIngest {
			t.Fatalf("Authenticate #%d: %+v, %v", i+1, got, err)
		}
	}
	for _, bad := range []string{"", "lift_", secret + "x", strings.ToUpper(secret)} {
		if _, err := db.Authenticate(ctx, bad); !experiment.Is(err, experiment.Unauthorized) {
			t.Errorf("Authenticate(%q): got %v, want Unauthorized", bad, err)
		}
	}
	if err := db.RevokeKey(ctx, "alice", k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Authenticate(ctx, secret); !experiment.Is(err, experiment.Unauthorized) {
		t.Errorf("revoked key still authenticates (cache not invalidated): %v", err)
	}
	if err := db.RevokeKey(ctx, "alice", k.ID); err != nil {
		t.Errorf("revoking twice: %v", err)
	}
	if err := db.RevokeKey(ctx, "alice", "key_nope"); !experiment.Is(err, experiment.NotFound) {
		t.Errorf("revoke unknown: got %v, want NotFound", err)
	}
	if _, _, err := db.CreateKey(ctx, "alice", "x", "root"); !experiment.Is(err, experiment.Invalid) || !strings.Contains(err.Error(), "role") {
		t.Errorf("bad role: got %v, want Invalid naming role", err)
	}
	keys, err := db.ListKeys(ctx)
	if err != nil || len(keys) != 1 || keys[0].RevokedAt == nil {
		t.Errorf("ListKeys: %+v, %v", keys, err)
	}
	if a, _ := db.Audit(ctx, "key", k.ID, 0); len(a) != 2 || strings.Contains(string(a[0].After)+string(a[1].After), k.Hash) {
		t.Errorf("key audit: want create and revoke entries without the hash, got %+v", a)
	}
}

func TestEnsureAdminKey(t *testing.T) {
	ctx := context.Background()
	t.Run("generated once", func(t *testing.T) {
		db, _ := openTest(t, newClock())
		printed, err := db.EnsureAdminKey(ctx, "")
		if err != nil || !secretPattern.MatchString(printed) {
			t.Fatalf("first start: %q, %v", printed, err)
		}
		if k, err := db.Authenticate(ctx, printed); err != nil || k.Role != experiment.RoleAdmin {
			t.Errorf("printed key: %+v, %v", k, err)
		}
		if again, err := db.EnsureAdminKey(ctx, ""); err != nil || again != "" {
			t.Errorf("second start printed %q (err %v), want nothing", again, err)
		}
	})
	t.Run("from environment", func(t *testing.T) {
		db, _ := openTest(t, newClock())
		const env = "lift_from_the_environment_0001"
		for i := 0; i < 2; i++ {
			if printed, err := db.EnsureAdminKey(ctx, env); err != nil || printed != "" {
				t.Fatalf("call %d: %q, %v", i+1, printed, err)
			}
		}
		if n := count(t, db, `SELECT count(*) FROM api_keys`); n != 1 {
			t.Errorf("%d keys stored, want 1", n)
		}
		k, err := db.Authenticate(ctx, env)
		if err != nil || k.Role != experiment.RoleAdmin {
			t.Fatalf("env key: %+v, %v", k, err)
		}
		// An admin key exists, so no key is generated.
		if printed, _ := db.EnsureAdminKey(ctx, ""); printed != "" {
			t.Errorf("generated a key although one exists")
		}
		// The last admin key cannot be revoked; with a second one it can.
		if err := db.RevokeKey(ctx, "alice", k.ID); !experiment.Is(err, experiment.Conflict) {
			t.Errorf("revoking the last admin key: got %v, want Conflict", err)
		}
		if _, _, err := db.CreateKey(ctx, "alice", "ops", experiment.RoleAdmin); err != nil {
			t.Fatal(err)
		}
		if err := db.RevokeKey(ctx, "alice", k.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := db.EnsureAdminKey(ctx, env); !experiment.Is(err, experiment.Conflict) {
			t.Errorf("revoked env key: got %v, want Conflict", err)
		}
		if _, err := db.EnsureAdminKey(ctx, "short"); !experiment.Is(err, experiment.Invalid) {
			t.Errorf("short env key: got %v, want Invalid", err)
		}
	})
}
