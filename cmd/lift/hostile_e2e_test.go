package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/liftlab/lift/store"
)

// clientFrom returns an HTTP client whose connections come from the loopback
// address ip (127.0.0.0/8 all reaches the server on 127.0.0.1), so that the
// server's per-address connection cap tells the clients apart, with at most
// conns connections.
func clientFrom(ip string, conns int) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: d.DialContext, MaxConnsPerHost: conns, MaxIdleConnsPerHost: conns}}
}

// post sends body with the content type and returns the status (0 with the
// error when no answer came).
func post(c *http.Client, url, key, contentType string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest("POST", url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", contentType)
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// TestServeHostileLoad is the load test of issue 15: "lift serve" on loopback,
// honest clients posting exposures and events, and beside them, from other
// addresses, clients that poison (NUL bytes, control characters), send bodies
// over the limit, timestamps in year 9999 or 1899, bodies and headers one byte
// at a time, and more connections than the per-address cap. Every honest batch
// must be acknowledged, every hostile one refused with its 4xx (or its
// connection cut), and afterwards the file must hold exactly the honest data.
// Bounded: a fixed number of batches per client.
func TestServeHostileLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	dbPath := filepath.Join(t.TempDir(), "lift.duckdb")
	srv := startServe(t, buildLift(t), "--db", dbPath, "--read-timeout", "1s", "--read-header-timeout", "1s",
		"--max-conns-per-ip", "6", "--body-limit", "1048576", "--max-clock-skew", "5m", "--duckdb-memory-limit", "512MiB",
		"--log-level", "info")
	srv.mustCall(t, "POST", "/v1/experiments", map[string]any{
		"key": "checkout", "variants": []map[string]any{{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}}}, nil)
	srv.mustCall(t, "POST", "/v1/experiments/checkout/start", nil, nil)
	var key struct {
		Secret string `json:"secret"`
	}
	srv.mustCall(t, "POST", "/v1/keys", map[string]any{"name": "svc", "role": "ingest"}, &key)
	ingest := key.Secret
	evTS := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)

	var (
		mu         sync.Mutex
		honestFail []string
		units      = map[string]bool{} // acknowledged exposures
		eventIDs   = map[string]bool{} // acknowledged events
		hostile    = map[string]int{}  // outcome counts of hostile requests, by kind and status
		hostileBad []string            // hostile requests that were accepted
		wg         sync.WaitGroup
	)
	// Honest clients: 4 workers from 127.0.0.1 sharing 4 connections.
	honest := clientFrom("127.0.0.1", 4)
	const workers, batches, per = 4, 12, 50
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				var xs, evs []map[string]any
				var us, ids []string
				for j := range per {
					u := fmt.Sprintf("h%d-b%d-u%d", w, b, j)
					us = append(us, u)
					xs = append(xs, map[string]any{"experiment": "checkout", "unit": u, "variant": []string{"control", "treatment"}[j%2]})
					id := "e-" + u
					ids = append(ids, id)
					evs = append(evs, map[string]any{"event_id": id, "unit": u, "type": "purchase", "ts": evTS, "value": j})
				}
				xb, _ := json.Marshal(map[string]any{"exposures": xs})
				eb, _ := json.Marshal(map[string]any{"events": evs})
				s1, body1, err1 := post(honest, srv.base+"/v1/exposures", ingest, "application/json", xb)
				s2, body2, err2 := post(honest, srv.base+"/v1/events", ingest, "application/json", eb)
				mu.Lock()
				if s1 == http.StatusOK {
					for _, u := range us {
						units[u] = true
					}
				} else {
					honestFail = append(honestFail, fmt.Sprintf("exposures: %d %s %v", s1, body1, err1))
				}
				if s2 == http.StatusOK {
					for _, id := range ids {
						eventIDs[id] = true
					}
				} else {
					honestFail = append(honestFail, fmt.Sprintf("events: %d %s %v", s2, body2, err2))
				}
				mu.Unlock()
			}
		}()
	}
	record := func(kind string, status int, body []byte, want ...int) {
		mu.Lock()
		defer mu.Unlock()
		hostile[fmt.Sprintf("%s %d", kind, status)]++
		if status >= 200 && status < 300 {
			hostileBad = append(hostileBad, fmt.Sprintf("%s accepted: %s", kind, body))
			return
		}
		ok := false
		for _, w := range want {
			ok = ok || status == w
		}
		if !ok {
			hostileBad = append(hostileBad, fmt.Sprintf("%s: status %d %s, want %v", kind, status, body, want))
		}
	}
	// Poisoners, each from its own address.
	far := "9999-01-01T00:00:00Z"
	poison := []struct {
		kind, ip, path, contentType, body string
	}{
		{"NUL experiment", "127.0.0.2", "/v1/exposures", "application/json", `{"exposures": [{"experiment": "checkout\u0000x", "unit": "victim", "variant": "control"}]}`},
		{"NUL unit", "127.0.0.2", "/v1/exposures", "application/json", `{"exposures": [{"experiment": "checkout", "unit": "victim\u0000x", "variant": "control"}]}`},
		{"NUL event unit", "127.0.0.2", "/v1/events", "application/json", `{"events": [{"event_id": "victim-e", "unit": "victim\u0000x", "type": "purchase", "ts": "` + evTS + `"}]}`},
		{"control character in an NDJSON event", "127.0.0.2", "/v1/events", "application/x-ndjson", `{"event_id": "victim-e2", "unit": "victim\u0007", "type": "purchase", "ts": "` + evTS + `"}`},
		{"exposure in year 9999", "127.0.0.3", "/v1/exposures", "application/json", `{"exposures": [{"experiment": "checkout", "unit": "victim-far", "variant": "control", "ts": "` + far + `"}]}`},
		{"event in year 9999", "127.0.0.3", "/v1/events", "application/json", `{"events": [{"event_id": "victim-far", "unit": "victim", "type": "purchase", "ts": "` + far + `"}]}`},
		{"event in 1899", "127.0.0.3", "/v1/events", "application/json", `{"events": [{"event_id": "victim-old", "unit": "victim", "type": "purchase", "ts": "1899-12-31T00:00:00Z"}]}`},
	}
	for _, p := range poison {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := clientFrom(p.ip, 2)
			for range 10 {
				s, b, err := post(c, srv.base+p.path, ingest, p.contentType, []byte(p.body))
				if err != nil {
					record(p.kind+" (no answer: "+err.Error()+")", 0, nil, http.StatusBadRequest)
					continue
				}
				record(p.kind, s, b, http.StatusBadRequest)
			}
		}()
	}
	// Huge bodies: 2 MiB of valid exposures, over the 1 MiB limit.
	wg.Add(1)
	go func() {
		defer wg.Done()
		c := clientFrom("127.0.0.4", 2)
		var sb strings.Builder
		sb.WriteString(`{"exposures": [`)
		for i := 0; sb.Len() < 2<<20; i++ {
			if i > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `{"experiment": "checkout", "unit": "victim-huge-%d", "variant": "control"}`, i)
		}
		sb.WriteString(`]}`)
		for range 5 {
			s, b, err := post(c, srv.base+"/v1/exposures", ingest, "application/json", []byte(sb.String()))
			if err != nil {
				// The server may close the connection while the client is still
				// sending the rest of the body: refused all the same.
				record("huge body (connection closed before the answer)", -1, nil, -1)
				continue
			}
			record("huge body", s, b, http.StatusRequestEntityTooLarge)
		}
	}()
	// Slow bodies and slow headers from 127.0.0.5: 10 connections against a cap
	// of 6, each sending one byte every 200 ms. Each must end by the server's
	// doing: a 400 (body past --read-timeout), a 503 (over the cap), or a close
	// (headers past --read-header-timeout), well before the client is done.
	slowBody := `{"exposures": [{"experiment": "checkout", "unit": "victim-slow", "variant": "control"}]}`
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.5")}}
			c, err := d.Dial("tcp", strings.TrimPrefix(srv.base, "http://"))
			if err != nil {
				record("slow (dial: "+err.Error()+")", 0, nil, 503)
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(30 * time.Second)) // the bound of this client, far past the server's
			var head, rest string
			kind := "slow body"
			if i%2 == 0 {
				head = fmt.Sprintf("POST /v1/exposures HTTP/1.1\r\nHost: lift\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", ingest, len(slowBody))
				rest = slowBody
			} else {
				kind = "slow headers"
				rest = fmt.Sprintf("POST /v1/exposures HTTP/1.1\r\nHost: lift\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s", ingest, len(slowBody), slowBody)
			}
			answer := make(chan int, 1)
			go func() {
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					answer <- -1 // closed without an answer
					return
				}
				resp.Body.Close()
				answer <- resp.StatusCode
			}()
			if _, err := io.WriteString(c, head); err != nil {
				record(kind+" (closed)", <-answer, nil, 400, 503, -1)
				return
			}
			for j := 0; j < len(rest); j++ {
				select {
				case s := <-answer:
					record(kind, s, nil, 400, 503, -1)
					return
				case <-time.After(200 * time.Millisecond):
				}
				if _, err := c.Write([]byte{rest[j]}); err != nil {
					break
				}
			}
			select {
			case s := <-answer:
				record(kind, s, nil, 400, 503, -1)
			case <-time.After(5 * time.Second):
				record(kind+" (held open until the client finished)", 200, nil)
			}
		}()
	}
	wg.Wait()

	if len(honestFail) > 0 {
		t.Errorf("%d of %d honest batches failed; first: %s", len(honestFail), 2*workers*batches, honestFail[0])
	}
	for _, b := range hostileBad {
		t.Errorf("hostile request: %s", b)
	}
	var kinds []string
	for k, n := range hostile {
		kinds = append(kinds, fmt.Sprintf("%s: %d", k, n))
	}
	sort.Strings(kinds)
	t.Logf("hostile outcomes (kind status: count): %s", strings.Join(kinds, "; "))
	if hostile["slow body 400"] == 0 || hostile["slow body 503"]+hostile["slow headers 503"] == 0 {
		t.Errorf("the slow clients did not meet both the body deadline and the connection cap: %v", kinds)
	}
	srv.stop(t)
	// Issue 15, item 3: the memory limit reached DuckDB (the server logs the
	// setting as DuckDB reports it).
	if log := srv.stderr.String(); !strings.Contains(log, `duckdb_memory_limit="512.0 MiB"`) {
		t.Errorf("the server's log does not show DuckDB's memory limit of 512 MiB:\n%.2000s", log)
	}

	// The file holds exactly the honest data.
	ctx := context.Background()
	db, err := store.Open(ctx, dbPath, store.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, c := range []struct {
		what, query string
		want        map[string]bool
	}{
		{"exposures", `SELECT unit FROM exposures`, units},
		{"events", `SELECT event_id FROM events`, eventIDs},
	} {
		rows, err := db.SQL().QueryContext(ctx, c.query)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		n := 0
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			got[s] = true
			n++
		}
		rows.Close()
		if n != len(c.want) || len(got) != len(c.want) {
			t.Errorf("%s: %d rows (%d distinct) stored, %d honest acknowledged", c.what, n, len(got), len(c.want))
		}
		for s := range got {
			if !c.want[s] {
				t.Errorf("%s: stored %q, which no honest client sent", c.what, s)
				break
			}
		}
		if len(c.want) != workers*batches*per {
			t.Errorf("%s: %d acknowledged, want %d", c.what, len(c.want), workers*batches*per)
		}
	}
}
