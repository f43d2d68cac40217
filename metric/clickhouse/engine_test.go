package clickhouse_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/liftlab/lift/internal/chcluster"
	"github.com/liftlab/lift/metric"
	"github.com/liftlab/lift/metric/clickhouse"
	"github.com/liftlab/lift/metric/metrictest"
)

// clusters are the one-server and two-shard clusters TestMain starts (or
// attaches), nil with skip set when there is no server.
var (
	single, sharded *chcluster.Cluster
	skip            string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "lift-clickhouse-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if os.Getenv(chcluster.Env) != "" {
		// Running servers: the named ones are the cluster; the first alone is
		// the single server.
		sharded, skip, err = chcluster.FromEnv(ctx, dir, 2)
		single = sharded
	} else {
		sharded, skip, err = chcluster.FromEnv(ctx, filepath.Join(dir, "two"), 2)
		if err == nil && skip == "" {
			defer sharded.Stop()
			single, err = chcluster.Start(ctx, filepath.Join(dir, "one"), 1)
			if err == nil {
				defer single.Stop()
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

func newEngine(c *chcluster.Cluster, shards int) metrictest.NewEngine {
	return func(t *testing.T, d metric.Dataset) metric.Engine {
		t.Helper()
		ctx := context.Background()
		if err := c.Truncate(ctx); err != nil {
			t.Fatal(err)
		}
		e, err := clickhouse.Open(ctx, clickhouse.Options{Shards: c.Addrs()[:shards]})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		if err := e.Load(ctx, d); err != nil {
			t.Fatal(err)
		}
		return e
	}
}

func TestConformanceOneServer(t *testing.T) {
	if skip != "" {
		t.Skip(skip)
	}
	metrictest.Run(t, newEngine(single, 1))
}

func TestConformanceTwoShards(t *testing.T) {
	if skip != "" {
		t.Skip(skip)
	}
	metrictest.Run(t, newEngine(sharded, 2))
}

// TestShardMatchesServer checks that Shard, which Load uses to place a unit,
// is the sharding key the Distributed tables apply: cityHash64(unit) modulo the
// number of shards, as the server computes it.
func TestShardMatchesServer(t *testing.T) {
	if skip != "" {
		t.Skip(skip)
	}
	ctx := context.Background()
	units := []string{"a", "u0001", "control-042", "ünï", "a'b", ""}
	for i, u := range units {
		for _, n := range []int{2, 3} {
			got, err := single.Query(ctx, single.Servers[0], fmt.Sprintf("SELECT cityHash64(unhex('%x')) %% %d", u, n))
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("%d\n", clickhouse.Shard(u, n)); got != want {
				t.Errorf("unit %d %q over %d shards: server %q, Shard %q", i, u, n, got, want)
			}
		}
	}
}
