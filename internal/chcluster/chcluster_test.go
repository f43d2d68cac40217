package chcluster

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestStartTwoShards starts two servers and checks that a row inserted through
// the Distributed table lands on exactly one shard and is read back through it.
func TestStartTwoShards(t *testing.T) {
	ctx := context.Background()
	c, skip, err := FromEnv(ctx, t.TempDir(), 2)
	if err != nil {
		t.Fatal(err)
	}
	if skip != "" {
		t.Skip(skip)
	}
	if c.Servers[0].Dir != "" {
		defer c.Stop()
	}
	if err := c.Truncate(ctx); err != nil {
		t.Fatal(err)
	}
	// Inserts into a Distributed table reach the other shard in the background:
	// poll for them (the test is of placement, not of speed).
	for _, u := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		if _, err := c.Query(ctx, c.Servers[0], "INSERT INTO events (event_id, unit, type, ts, value) SELECT 'x', '"+u+"', 'visit', 1, 2"); err != nil {
			t.Fatal(err)
		}
	}
	var got string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if got, err = c.Query(ctx, c.Servers[1], "SELECT count(), sum(value) FROM events"); err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(got) == "8\t16" {
			break
		}
	}
	if strings.TrimSpace(got) != "8\t16" {
		t.Fatalf("through the Distributed table: %q, want 8 rows summing to 16", got)
	}
	for i, s := range c.Servers {
		got, err := c.Query(ctx, s, "SELECT count() FROM events_local")
		if err != nil {
			t.Fatal(err)
		}
		// The Distributed engine sends a row to shard cityHash64(unit) % 2 (equal
		// weights), the hash computed by the server itself.
		want, err := c.Query(ctx, s, fmt.Sprintf("SELECT countIf(cityHash64(u) %% 2 = %d) FROM (SELECT arrayJoin(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']) AS u)", i))
		if err != nil {
			t.Fatal(err)
		}
		if got != want || got == "0\n" || got == "8\n" {
			t.Errorf("shard %d holds %q of the 8 units, want %q and not all or none", i, got, want)
		}
	}
}
