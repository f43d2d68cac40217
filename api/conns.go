package api

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

// bodyDeadline gives the reading of each request body a deadline of
// Options.BodyReadTimeout from the moment the handler starts, so that a client
// sending one byte every few seconds cannot hold a connection (and a handler)
// open: past it the read fails, the answer is 400 and the connection is closed.
// The deadline is lifted as soon as the body has been read to its end, so that a
// long computation after it is bounded only by Options.RequestTimeout (a
// connection-wide read deadline, http.Server.ReadTimeout, would cancel the
// request's context when it passes, even after the body is in).
func (s *Server) bodyDeadline(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.Body == nil || r.Body == http.NoBody || (r.ContentLength == 0 && len(r.TransferEncoding) == 0) {
			return next(c)
		}
		rc := http.NewResponseController(c.Response())
		if err := rc.SetReadDeadline(time.Now().Add(s.opt.BodyReadTimeout)); err != nil {
			// Not a connection that supports deadlines (e.g. a test recorder).
			return next(c)
		}
		r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
		return next(c)
	}
}

// deadlineBody lifts the connection's read deadline when the body ends.
type deadlineBody struct {
	io.ReadCloser
	rc       *http.ResponseController
	done     bool
	timedOut bool // the read failed at the deadline: the client is slow, not gone
}

// bodyTimedOut reports whether r's body read failed at its deadline.
func bodyTimedOut(r *http.Request) bool {
	b, ok := r.Body.(*deadlineBody)
	return ok && b.timedOut
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && !b.done {
		b.done = true
		b.timedOut = isTimeout(err)
		if errors.Is(err, io.EOF) {
			_ = b.rc.SetReadDeadline(time.Time{})
		}
	}
	return n, err
}

// isTimeout reports whether err is a network timeout (a passed read deadline).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// LimitConnsPerIP wraps ln so that at most max connections from one client IP
// address are open at a time; a connection past the cap is answered 503 (with
// "Connection: close") and closed at once, and the next one from that address
// is accepted again when one of its connections ends. max <= 0 returns ln.
//
// Behind a proxy every client has the proxy's address: give the proxy its own
// per-client limits and turn this one off (--max-conns-per-ip 0).
func LimitConnsPerIP(ln net.Listener, max int) net.Listener {
	if max <= 0 {
		return ln
	}
	return &ipLimitListener{Listener: ln, max: max, open: map[string]int{}}
}

type ipLimitListener struct {
	net.Listener
	max int

	mu   sync.Mutex
	open map[string]int // client IP -> open connections
}

// refusedAnswer is what a connection past the cap reads before it is closed.
func refusedAnswer() string {
	const body = `{"error": {"code": "unavailable", "message": "too many open connections from this address (--max-conns-per-ip); retry", "request_id": ""}}`
	return "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: application/json\r\nRetry-After: 1\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

func (l *ipLimitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := hostOf(c.RemoteAddr())
		l.mu.Lock()
		if l.open[ip] >= l.max {
			l.mu.Unlock()
			go refuse(c)
			continue
		}
		l.open[ip]++
		l.mu.Unlock()
		return &countedConn{Conn: c, release: func() { l.release(ip) }}, nil
	}
}

func (l *ipLimitListener) release(ip string) {
	l.mu.Lock()
	if l.open[ip]--; l.open[ip] <= 0 {
		delete(l.open, ip)
	}
	l.mu.Unlock()
}

// refuse answers 503 and closes c, spending at most a second on it.
func refuse(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(time.Second))
	_, _ = io.WriteString(c, refusedAnswer())
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
		// Read what the client sent so that the close does not reset the
		// connection before the answer is read.
		_, _ = io.Copy(io.Discard, io.LimitReader(c, 64<<10))
	}
	_ = c.Close()
}

func hostOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// countedConn releases its slot once, on the first Close.
type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
