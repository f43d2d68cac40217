package api

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Issue 15, item 2: a client that sends its body one byte at a time gets 400
// once Options.BodyReadTimeout has passed, its connection is closed, and
// nothing of the request is stored. (Before the fix the body was read for as
// long as the client kept sending.)
func TestSlowBodyCut(t *testing.T) {
	ts := newTestServer(t, func(o *Options) { o.BodyReadTimeout = 300 * time.Millisecond })
	ts.setupRunning()
	body := `{"exposures": [{"experiment": "checkout", "unit": "slow-1", "variant": "control"}]}`
	c, err := net.Dial("tcp", ts.http.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /v1/exposures HTTP/1.1\r\nHost: lift\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", ts.admin, len(body))
	answered := make(chan *http.Response, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			answered <- nil
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body = io.NopCloser(strings.NewReader(string(b)))
		answered <- resp
	}()
	// One byte every 50 ms would take 4 s for the body; the server must not wait
	// for it. The loop stops at the answer or when the server closes the
	// connection (a write fails).
	var resp *http.Response
send:
	for i := 0; i < len(body)-1; i++ {
		select {
		case resp = <-answered:
			break send
		case <-time.After(50 * time.Millisecond):
		}
		if _, err := c.Write([]byte{body[i]}); err != nil {
			resp = <-answered
			break
		}
	}
	if resp == nil {
		resp = <-answered
	}
	if resp == nil {
		t.Fatal("no answer to the slow body")
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "--read-timeout") {
		t.Errorf("slow body: %d %s; want 400 naming --read-timeout", resp.StatusCode, b)
	}
	if resp.Header.Get("Connection") != "close" && !resp.Close {
		t.Errorf("slow body: the connection is kept open (headers %v)", resp.Header)
	}
	var n int
	if err := ts.db.SQL().QueryRow(`SELECT count(*) FROM exposures`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d exposures stored (%v), want 0", n, err)
	}
	// A body sent at once on a fresh connection still works.
	ts.must(http.StatusOK, "POST", "/v1/exposures", body, nil)
}

// Issue 15, item 2: LimitConnsPerIP keeps at most max connections of one
// address open; one past the cap reads a 503 and is closed, and a slot frees
// when a connection ends.
func TestLimitConnsPerIP(t *testing.T) {
	ts := newTestServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(ts.srv.Handler())
	hs.Listener.Close()
	hs.Listener = LimitConnsPerIP(ln, 2)
	hs.Start()
	defer hs.Close()
	addr := ln.Addr().String()
	get := func(c net.Conn) (int, error) {
		if _, err := fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: lift\r\n\r\n"); err != nil {
			return 0, err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	var open []net.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	for i := range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, c)
		if status, err := get(c); status != http.StatusOK {
			t.Fatalf("connection %d: %d, %v; want 200", i, status, err)
		}
	}
	third, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(third), nil)
	if err != nil {
		t.Fatalf("third connection: %v; want a 503 answer", err)
	}
	b, _ := io.ReadAll(resp.Body)
	third.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "--max-conns-per-ip") {
		t.Errorf("third connection: %d %s; want 503 naming --max-conns-per-ip", resp.StatusCode, b)
	}
	// The open connections still serve.
	if status, err := get(open[0]); status != http.StatusOK {
		t.Errorf("first connection after the refusal: %d, %v", status, err)
	}
	// Closing one frees a slot (the server sees the close asynchronously).
	open[1].Close()
	open = open[:1]
	for attempt := 0; ; attempt++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		status, err := get(c)
		if status == http.StatusOK {
			open = append(open, c)
			break
		}
		c.Close()
		if attempt == 200 {
			t.Fatalf("no slot freed after a connection closed: %d, %v", status, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
