// Package chcluster starts ClickHouse servers on loopback for tests and
// benchmarks: each server gets a config.xml and users.xml in a temporary
// directory (listening on 127.0.0.1 only, its own TCP, HTTP and interserver
// ports, its data and tmp paths inside that directory, and a remote_servers
// entry naming every server of the cluster as one shard), is started as
// /usr/sbin/clickhouse-server --config-file=DIR/config.xml, is ready when
// SELECT 1 answers on its HTTP port, and is stopped by its PID.
//
// Start creates the tables the ClickHouse metric engine reads
// (metric/clickhouse.Schema): exposures_local and events_local (MergeTree) on
// every server and exposures and events, Distributed over the cluster by
// cityHash64(unit), so a unit's exposures and events live on the same shard.
//
// Servers already running can be used instead (Attach), as tests do when
// LIFT_CLICKHOUSE names them (host:port of the native protocol, comma
// separated; the HTTP port is taken to be tcp_port − 877, 9000 → 8123, unless
// host:tcp/http is given).
//
// The package talks to the servers over their HTTP interface with net/http
// (DDL and probes only); queries and inserts go through metric/clickhouse, the
// one home of the Go client.
package chcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/liftlab/lift/metric/clickhouse"
)

// Binary is where Debian installs the server.
const Binary = "/usr/sbin/clickhouse-server"

// ClusterName is the remote_servers entry naming every server as a shard.
const ClusterName = "lift"

// Server is one ClickHouse server of a cluster.
type Server struct {
	TCPPort, HTTPPort int
	Dir               string // empty for an attached server
	cmd               *exec.Cmd
	exited            chan struct{}
	remote            string // the remote_servers entry it was started with
	interserver       int
}

// Addr is host:port of the native protocol.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.TCPPort)) }

// Cluster is a set of servers, each one shard of ClusterName.
type Cluster struct {
	Servers []*Server
	host    string
}

// Addrs are the servers' native-protocol addresses.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Servers))
	for i, s := range c.Servers {
		out[i] = net.JoinHostPort(c.host, strconv.Itoa(s.TCPPort))
	}
	return out
}

// Available reports whether the server binary is installed.
func Available() bool {
	_, err := os.Stat(Binary)
	return err == nil
}

// Start starts shards servers under dir (each in its own subdirectory), waits
// until each answers, and creates the tables. On error the servers started are
// stopped.
func Start(ctx context.Context, dir string, shards int) (*Cluster, error) {
	ports, err := freePorts(3 * shards)
	if err != nil {
		return nil, fmt.Errorf("chcluster: %w", err)
	}
	c := &Cluster{host: "127.0.0.1"}
	for i := range shards {
		c.Servers = append(c.Servers, &Server{TCPPort: ports[3*i], HTTPPort: ports[3*i+1], Dir: filepath.Join(dir, fmt.Sprintf("shard%d", i+1))})
	}
	for i, s := range c.Servers {
		if err := s.start(ctx, c.remoteServers(), ports[3*i+2]); err != nil {
			c.Stop()
			return nil, err
		}
	}
	for _, s := range c.Servers {
		if err := s.wait(ctx, c.host); err != nil {
			c.Stop()
			return nil, err
		}
	}
	if err := c.CreateTables(ctx); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// Attach uses running servers, given as host:tcp or host:tcp/http (see the
// package doc); their remote_servers must name them as cluster ClusterName.
// It waits for each to answer and creates the tables if they are missing.
func Attach(ctx context.Context, spec string) (*Cluster, error) {
	c := &Cluster{}
	for _, a := range strings.Split(spec, ",") {
		a = strings.TrimSpace(a)
		host, ports, err := net.SplitHostPort(a)
		if err != nil {
			return nil, fmt.Errorf("chcluster: server %q: %w", a, err)
		}
		tcp, httpPort, found := strings.Cut(ports, "/")
		s := &Server{}
		if s.TCPPort, err = strconv.Atoi(tcp); err != nil {
			return nil, fmt.Errorf("chcluster: server %q: port %w", a, err)
		}
		s.HTTPPort = s.TCPPort - 877
		if found {
			if s.HTTPPort, err = strconv.Atoi(httpPort); err != nil {
				return nil, fmt.Errorf("chcluster: server %q: HTTP port %w", a, err)
			}
		}
		c.host = host
		c.Servers = append(c.Servers, s)
	}
	for _, s := range c.Servers {
		if err := s.wait(ctx, c.host); err != nil {
			return nil, err
		}
	}
	return c, c.CreateTables(ctx)
}

// CreateTables creates the local and Distributed tables on every server (if
// absent).
func (c *Cluster) CreateTables(ctx context.Context) error {
	for _, s := range c.Servers {
		for _, q := range clickhouse.Schema(ClusterName) {
			if _, err := c.Query(ctx, s, q); err != nil {
				return err
			}
		}
	}
	return nil
}

// Truncate empties the local tables of every server.
func (c *Cluster) Truncate(ctx context.Context) error {
	for _, s := range c.Servers {
		for _, t := range []string{"exposures_local", "events_local"} {
			if _, err := c.Query(ctx, s, "TRUNCATE TABLE "+t); err != nil {
				return err
			}
		}
	}
	return nil
}

// Query runs q on s over HTTP and returns its answer (TabSeparated).
func (c *Cluster) Query(ctx context.Context, s *Server, q string) (string, error) {
	return query(ctx, c.host, s.HTTPPort, q)
}

func query(ctx context.Context, host string, port int, q string) (string, error) {
	u := "http://" + net.JoinHostPort(host, strconv.Itoa(port)) + "/"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewBufferString(q))
	if err != nil {
		return "", fmt.Errorf("chcluster: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("chcluster: %s: %w", firstLine(q), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("chcluster: %s: %w", firstLine(q), err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("chcluster: %s: %s: %s", firstLine(q), resp.Status, strings.TrimSpace(string(b)))
	}
	return string(b), nil
}

func firstLine(q string) string {
	q, _, _ = strings.Cut(strings.TrimSpace(q), "\n")
	return q
}

// Stop stops the servers this package started (SIGTERM to each PID, SIGKILL
// after 2 s: a test server has nothing to keep) and removes nothing: the caller owns the directory.
func (c *Cluster) Stop() {
	for _, s := range c.Servers {
		s.stop()
	}
}

func (c *Cluster) remoteServers() string {
	var b strings.Builder
	fmt.Fprintf(&b, "<remote_servers><%s>", ClusterName)
	for _, s := range c.Servers {
		fmt.Fprintf(&b, "<shard><replica><host>127.0.0.1</host><port>%d</port></replica></shard>", s.TCPPort)
	}
	fmt.Fprintf(&b, "</%s></remote_servers>", ClusterName)
	return b.String()
}

const configXML = `<?xml version="1.0"?>
<yandex>
    <logger>
        <level>warning</level>
        <log>%[1]s/server.log</log>
        <errorlog>%[1]s/server.err.log</errorlog>
        <console>0</console>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>%[2]d</tcp_port>
    <http_port>%[3]d</http_port>
    <interserver_http_port>%[4]d</interserver_http_port>
    <interserver_http_host>127.0.0.1</interserver_http_host>
    <path>%[1]s/data/</path>
    <tmp_path>%[1]s/tmp/</tmp_path>
    <user_files_path>%[1]s/user_files/</user_files_path>
    <format_schema_path>%[1]s/format_schemas/</format_schema_path>
    <users_config>%[1]s/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <max_concurrent_queries>100</max_concurrent_queries>
    <mark_cache_size>1073741824</mark_cache_size>
    <timezone>UTC</timezone>
    %[5]s
</yandex>
`

const usersXML = `<?xml version="1.0"?>
<yandex>
    <profiles><default><max_memory_usage>10000000000</max_memory_usage></default></profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
`

func (s *Server) start(ctx context.Context, remote string, interserver int) error {
	s.remote, s.interserver = remote, interserver
	for _, d := range []string{"data", "tmp", "user_files", "format_schemas"} {
		if err := os.MkdirAll(filepath.Join(s.Dir, d), 0o755); err != nil {
			return fmt.Errorf("chcluster: %w", err)
		}
	}
	cfg := filepath.Join(s.Dir, "config.xml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, configXML, s.Dir, s.TCPPort, s.HTTPPort, interserver, remote), 0o644); err != nil {
		return fmt.Errorf("chcluster: %w", err)
	}
	if err := os.WriteFile(filepath.Join(s.Dir, "users.xml"), []byte(usersXML), 0o644); err != nil {
		return fmt.Errorf("chcluster: %w", err)
	}
	// Not CommandContext: the server outlives the context that started it and
	// is stopped by Stop.
	s.cmd = exec.Command(Binary, "--config-file="+cfg)
	s.cmd.Dir = s.Dir
	out, err := os.Create(filepath.Join(s.Dir, "stdout.log"))
	if err != nil {
		return fmt.Errorf("chcluster: %w", err)
	}
	s.cmd.Stdout, s.cmd.Stderr = out, out
	if err := s.cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("chcluster: start %s: %w", Binary, err)
	}
	s.exited = make(chan struct{})
	go func() {
		s.cmd.Wait()
		out.Close()
		close(s.exited)
	}()
	return nil
}

// wait polls SELECT 1 until it answers (30 s at most).
func (s *Server) wait(ctx context.Context, host string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		got, err := query(ctx, host, s.HTTPPort, "SELECT 1")
		if err == nil && strings.TrimSpace(got) == "1" {
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("chcluster: server on port %d exited before answering; see %s", s.TCPPort, filepath.Join(s.Dir, "server.err.log"))
		case <-ctx.Done():
			return fmt.Errorf("chcluster: server on port %d did not answer SELECT 1: %w", s.TCPPort, errors.Join(ctx.Err(), err))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *Server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(2 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd = nil
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// FromEnv gives a test its cluster: the servers LIFT_CLICKHOUSE names
// (Attach), else shards servers started under dir, else (no server binary)
// a nil cluster and the reason to skip, which is an error instead when
// LIFT_REQUIRE_CLICKHOUSE=1. started says whether the caller must Stop it.
func FromEnv(ctx context.Context, dir string, shards int) (c *Cluster, skip string, err error) {
	if spec := os.Getenv(Env); spec != "" {
		c, err := Attach(ctx, spec)
		return c, "", err
	}
	if !Available() {
		msg := Binary + " is not installed (Debian's clickhouse-server; .ci/run installs it), or set " + Env + " to running servers"
		if os.Getenv(RequireEnv) == "1" {
			return nil, "", errors.New("chcluster: " + msg + ", and " + RequireEnv + "=1")
		}
		return nil, msg, nil
	}
	c, err = Start(ctx, dir, shards)
	return c, "", err
}

// Env names the running servers tests use instead of starting their own, and
// RequireEnv, set to 1, makes a missing server binary a failure, not a skip.
const (
	Env        = "LIFT_CLICKHOUSE"
	RequireEnv = "LIFT_REQUIRE_CLICKHOUSE"
)

// StopServer stops server i of the cluster (one this package started), and
// StartServer starts it again on the same ports and data and waits until it
// answers: a shard that goes down and comes back.
func (c *Cluster) StopServer(i int) { c.Servers[i].stop() }

// StartServer: see StopServer.
func (c *Cluster) StartServer(ctx context.Context, i int) error {
	s := c.Servers[i]
	if s.Dir == "" {
		return fmt.Errorf("chcluster: server %d is attached, not started here", i)
	}
	if err := s.start(ctx, s.remote, s.interserver); err != nil {
		return err
	}
	return s.wait(ctx, c.host)
}

// PID is the server's process id (0 for an attached server).
func (s *Server) PID() int {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}
