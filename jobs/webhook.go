package jobs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/liftlab/lift/experiment"
)

// WebhookPolicy says which hosts a monitor's webhook may reach. The zero policy
// (and ParseWebhookAllow("")) allows any public address: not loopback, private,
// link-local (cloud metadata services live there), carrier-grade NAT, unspecified
// or multicast. An allow-list replaces that default: host names, IP addresses and
// CIDR prefixes, and the word "public" for the default set.
//
// Addresses are checked when the connection is made, against the address the
// name resolved to, so a name that resolves to a public address when the job is
// created and to 127.0.0.1 later (DNS rebinding) is still refused. A host name on
// the list is trusted whatever it resolves to.
type WebhookPolicy struct {
	explicit bool // an allow-list was given: public addresses only if it says "public"
	public   bool
	names    map[string]bool
	prefixes []netip.Prefix
}

// ParseWebhookAllow reads the allow-list of lift serve's --webhook-allow flag:
// comma-separated host names, IP addresses, CIDR prefixes and "public"; "" is
// the default (public addresses only).
func ParseWebhookAllow(list string) (*WebhookPolicy, error) {
	p := &WebhookPolicy{names: map[string]bool{}}
	if strings.TrimSpace(list) == "" {
		return p, nil
	}
	p.explicit = true
	for _, e := range strings.Split(list, ",") {
		e = strings.ToLower(strings.TrimSpace(e))
		switch {
		case e == "":
		case e == "public":
			p.public = true
		case strings.Contains(e, "/"):
			pf, err := netip.ParsePrefix(e)
			if err != nil {
				return nil, fmt.Errorf("--webhook-allow: %q is not a CIDR prefix", e)
			}
			p.prefixes = append(p.prefixes, pf.Masked())
		default:
			if a, err := netip.ParseAddr(e); err == nil {
				p.prefixes = append(p.prefixes, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
				continue
			}
			if strings.ContainsAny(e, ":/?#@ ") {
				return nil, fmt.Errorf("--webhook-allow: %q is not a host name, an address or a CIDR prefix", e)
			}
			p.names[e] = true
		}
	}
	return p, nil
}

// String describes the policy for logs.
func (p *WebhookPolicy) String() string {
	if p == nil || !p.explicit {
		return "public addresses"
	}
	var parts []string
	if p.public {
		parts = append(parts, "public")
	}
	for n := range p.names {
		parts = append(parts, n)
	}
	for _, pf := range p.prefixes {
		parts = append(parts, pf.String())
	}
	return strings.Join(parts, ",")
}

// notPublic are the ranges that are not public addresses beyond those the netip
// predicates name (RFC 6890 and its successors).
var notPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, broadcast
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64: may translate to a private IPv4 address
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("2002::/16"),       // 6to4: embeds an IPv4 address
	netip.MustParsePrefix("2001::/32"),       // Teredo
	netip.MustParsePrefix("100::/64"),        // discard
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
}

// isPublic reports whether a is a public unicast address.
func isPublic(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsGlobalUnicast() || a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsMulticast() || a.IsUnspecified() {
		return false
	}
	for _, p := range notPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// allowsAddr reports whether the policy lets a connection reach a.
func (p *WebhookPolicy) allowsAddr(a netip.Addr) bool {
	a = a.Unmap()
	if p == nil || !p.explicit || p.public {
		if isPublic(a) {
			return true
		}
	}
	if p == nil {
		return false
	}
	for _, pf := range p.prefixes {
		if pf.Contains(a) {
			return true
		}
	}
	return false
}

func (p *WebhookPolicy) allowsName(host string) bool {
	return p != nil && p.names[strings.ToLower(strings.TrimSuffix(host, "."))]
}

// CheckURL validates a webhook URL at the job's creation: http or https, a host,
// no user name or password, and a host the policy may allow (a listed name, or an
// address, or a name whose address is checked when the webhook is called).
func (p *WebhookPolicy) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return experiment.Errorf("not a URL: %q", raw)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return experiment.Errorf("must be an http or https URL, got scheme %q", u.Scheme)
	}
	if u.User != nil {
		return experiment.Errorf("must not hold a user name or password")
	}
	host := u.Hostname()
	if host == "" {
		return experiment.Errorf("has no host: %q", raw)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if !p.allowsAddr(a) {
			return experiment.Errorf("address %s is not allowed for webhooks (loopback, private and link-local addresses need lift serve --webhook-allow; allowed: %s)", a, p)
		}
		return nil
	}
	if p.allowsName(host) {
		return nil
	}
	if p != nil && p.explicit && !p.public && len(p.prefixes) == 0 {
		return experiment.Errorf("host %q is not allowed for webhooks (allowed: %s)", host, p)
	}
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return experiment.Errorf("host %q is loopback; loopback webhooks need lift serve --webhook-allow", host)
	}
	return nil
}

// errAddrNotAllowed is what the dialer answers for an address the policy refuses.
var errAddrNotAllowed = errors.New("address not allowed for webhooks")

// Client returns the HTTP client webhooks are sent with: no proxy (a proxy would
// hide the address from the check), no redirects (a 3xx is a failed delivery:
// a redirect could lead anywhere), each connection's address checked against the
// policy, and the timeout for the whole exchange.
func (p *WebhookPolicy) Client(timeout time.Duration) *http.Client {
	checked := &net.Dialer{Timeout: timeout, Control: func(network, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil || !p.allowsAddr(ap.Addr()) {
			return errAddrNotAllowed
		}
		return nil
	}}
	trusted := &net.Dialer{Timeout: timeout}
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err == nil && p.allowsName(host) {
				return trusted.DialContext(ctx, network, addr)
			}
			return checked.DialContext(ctx, network, addr)
		},
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		MaxIdleConns:          4,
		IdleConnTimeout:       time.Minute,
	}
	return &http.Client{
		Timeout:       timeout,
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
