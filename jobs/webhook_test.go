package jobs

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestWebhookConnectCheck: the address a host name resolves to is checked when
// the connection is made, so a name that passes at creation but points at
// loopback (DNS rebinding; here "localhost") never reaches the receiver.
func TestWebhookConnectCheck(t *testing.T) {
	var hits atomic.Int64
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer recv.Close()
	port := recv.URL[strings.LastIndex(recv.URL, ":"):]
	for _, c := range []struct {
		allow, url string
		ok         bool
	}{
		{"", "http://localhost" + port + "/hook", false},
		{"", recv.URL + "/hook", false},
		{"public", "http://localhost" + port + "/hook", false},
		{"127.0.0.1", recv.URL + "/hook", true},
		{"127.0.0.0/8", "http://localhost" + port + "/hook", true}, // resolved, then allowed by prefix
		{"localhost", "http://localhost" + port + "/hook", true},   // a listed name is trusted
		{"10.0.0.0/8", recv.URL + "/hook", false},
	} {
		p, err := ParseWebhookAllow(c.allow)
		if err != nil {
			t.Fatal(err)
		}
		before := hits.Load()
		resp, err := p.Client(5*time.Second).Post(c.url, "application/json", strings.NewReader("{}"))
		if err == nil {
			resp.Body.Close()
		}
		reached := hits.Load() > before
		if (err == nil) != c.ok || reached != c.ok {
			t.Errorf("allow %q, POST %s: error %v, reached %v; want ok %v", c.allow, c.url, err, reached, c.ok)
		}
		if !c.ok && err != nil && !strings.Contains(err.Error(), "address not allowed") {
			t.Errorf("allow %q, POST %s: %v, want the address refused", c.allow, c.url, err)
		}
	}
}

func TestWebhookPolicy(t *testing.T) {
	for _, c := range []struct {
		addr   string
		public bool
	}{
		{"8.8.8.8", true}, {"2606:4700::1111", true}, {"127.0.0.1", false}, {"::1", false}, {"10.1.2.3", false},
		{"172.16.0.1", false}, {"192.168.1.1", false}, {"169.254.169.254", false}, {"fe80::1", false}, {"fc00::1", false},
		{"100.64.0.1", false}, {"0.0.0.0", false}, {"224.0.0.1", false}, {"::ffff:10.0.0.1", false}, {"::ffff:8.8.8.8", true},
		{"64:ff9b::a00:1", false}, {"2002:a00:1::", false}, {"192.0.2.1", false},
	} {
		if got := isPublic(netip.MustParseAddr(c.addr)); got != c.public {
			t.Errorf("isPublic(%s) = %v, want %v", c.addr, got, c.public)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "http://x", "a b"} {
		if _, err := ParseWebhookAllow(bad); err == nil {
			t.Errorf("ParseWebhookAllow(%q) accepted", bad)
		}
	}
	hooks, _ := ParseWebhookAllow("hooks.internal,10.0.0.0/8")
	for _, c := range []struct {
		policy *WebhookPolicy
		url    string
		ok     bool
	}{
		{nil, "https://hooks.slack.com/services/T/B/x", true},
		{nil, "http://[::1]/", false},
		{nil, "http://localhost/", false},
		{nil, "http://app.localhost/", false},
		{nil, "ftp://hooks.slack.com/", false},
		{nil, "https://u:p@hooks.slack.com/", false},
		{nil, "https:///x", false},
		{hooks, "http://hooks.internal/x", true},
		{hooks, "http://10.2.3.4/x", true},
		{hooks, "http://8.8.8.8/x", false},         // the list replaces the default
		{hooks, "https://hooks.slack.com/x", true}, // resolved at connect time against 10/8
	} {
		if err := c.policy.CheckURL(c.url); (err == nil) != c.ok {
			t.Errorf("policy %v CheckURL(%s) = %v, want ok %v", c.policy, c.url, err, c.ok)
		}
	}
}
