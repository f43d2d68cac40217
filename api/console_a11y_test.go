package api

import (
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/liftlab/lift/experiment"
)

// relativeLuminance is WCAG 2.1's relative luminance of an sRGB colour
// (https://www.w3.org/TR/WCAG21/#dfn-relative-luminance): each channel c/255
// linearised as c/12.92 below 0.04045, else ((c+0.055)/1.055)^2.4, then
// 0.2126 R + 0.7152 G + 0.0722 B.
func relativeLuminance(rgb [3]float64) float64 {
	var l [3]float64
	for i, c := range rgb {
		c /= 255
		if c <= 0.04045 {
			l[i] = c / 12.92
		} else {
			l[i] = math.Pow((c+0.055)/1.055, 2.4)
		}
	}
	return 0.2126*l[0] + 0.7152*l[1] + 0.0722*l[2]
}

// contrastRatio is WCAG 2.1's (L1 + 0.05) / (L2 + 0.05), L1 the lighter
// (https://www.w3.org/TR/WCAG21/#dfn-contrast-ratio).
func contrastRatio(a, b [3]float64) float64 {
	la, lb := relativeLuminance(a), relativeLuminance(b)
	return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)
}

var hexRE = regexp.MustCompile(`^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$`)

func parseHex(t testing.TB, s string) [3]float64 {
	t.Helper()
	m := hexRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		t.Fatalf("not a hex colour: %q", s)
	}
	h := m[1]
	if len(h) == 3 {
		h = string([]byte{h[0], h[0], h[1], h[1], h[2], h[2]})
	}
	var out [3]float64
	for i := range 3 {
		v, _ := strconv.ParseUint(h[2*i:2*i+2], 16, 8)
		out[i] = float64(v)
	}
	return out
}

// cssRule is one rule of the stylesheet: its selectors and declarations.
type cssRule struct {
	sel   string
	decls map[string]string
}

// parseCSS reads the rules of a flat stylesheet (and those inside @media
// blocks), with var(--name) resolved from :root.
func parseCSS(css string) []cssRule {
	css = regexp.MustCompile(`(?s)/\*.*?\*/`).ReplaceAllString(css, "")
	css = regexp.MustCompile(`@media[^{]*\{`).ReplaceAllString(css, "")
	var rules []cssRule
	for _, m := range regexp.MustCompile(`([^{}]+)\{([^{}]*)\}`).FindAllStringSubmatch(css, -1) {
		r := cssRule{sel: strings.TrimSpace(m[1]), decls: map[string]string{}}
		for _, d := range strings.Split(m[2], ";") {
			if k, v, ok := strings.Cut(d, ":"); ok {
				r.decls[strings.TrimSpace(k)] = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "!important"))
			}
		}
		rules = append(rules, r)
	}
	vars := map[string]string{}
	for _, r := range rules {
		if r.sel == ":root" {
			for k, v := range r.decls {
				vars[k] = v
			}
		}
	}
	varRE := regexp.MustCompile(`var\((--[a-z-]+)\)`)
	for _, r := range rules {
		for k, v := range r.decls {
			r.decls[k] = varRE.ReplaceAllStringFunc(v, func(s string) string { return vars[varRE.FindStringSubmatch(s)[1]] })
		}
	}
	return rules
}

// TestContrastFormula checks the formula on published values: black on
// white is 21:1 (WCAG's maximum), and #767676 on white 4.54:1, the lightest
// grey that passes AA (WebAIM's contrast checker gives 4.54:1).
func TestContrastFormula(t *testing.T) {
	for _, c := range []struct {
		fg, bg string
		want   float64
	}{{"#000", "#fff", 21}, {"#767676", "#ffffff", 4.54}, {"#fff", "#fff", 1}} {
		if got := contrastRatio(parseHex(t, c.fg), parseHex(t, c.bg)); math.Abs(got-c.want) > 0.005 {
			t.Errorf("%s on %s: %.3f, want %.2f", c.fg, c.bg, got, c.want)
		}
	}
}

// TestConsoleContrast: every text colour of the console's stylesheet
// against the background it is drawn on passes WCAG AA (4.5:1 for text). A
// rule with its own background is checked against it; a rule without one is
// checked against both surfaces text sits on (the page, --bg, and the
// header's panel, --panel), and the report's tinted rows against the colours
// drawn on them.
func TestConsoleContrast(t *testing.T) {
	raw, err := consoleFS.ReadFile("console/console.css")
	if err != nil {
		t.Fatal(err)
	}
	rules := parseCSS(string(raw))
	var root map[string]string
	for _, r := range rules {
		if r.sel == ":root" {
			root = r.decls
		}
	}
	surfaces := map[string]string{"--bg": root["--bg"], "--panel": root["--panel"]}
	bgOf := map[string]string{} // rule → its own background
	checked := 0
	check := func(what, fg, bg string) {
		t.Helper()
		checked++
		if r := contrastRatio(parseHex(t, fg), parseHex(t, bg)); r < 4.5 {
			t.Errorf("%s: %s on %s has contrast %.2f:1, under AA's 4.5:1", what, fg, bg, r)
		}
	}
	for _, r := range rules {
		bg := r.decls["background"]
		if bg == "" {
			bg = r.decls["background-color"]
		}
		if hexRE.MatchString(bg) {
			bgOf[r.sel] = bg
		}
		fg := r.decls["color"]
		if !hexRE.MatchString(fg) {
			continue // inherit, currentColor: checked where the colour is set
		}
		if hexRE.MatchString(bg) {
			check(r.sel, fg, bg)
			continue
		}
		for name, s := range surfaces {
			check(r.sel+" on "+name, fg, s)
		}
	}
	// The report's tinted rows and the colours drawn on them.
	for _, c := range []struct{ row, fg string }{
		{"tr.better", root["--good"]}, {"tr.worse", root["--bad"]}, {"tr.better", root["--ink"]}, {"tr.worse", root["--ink"]},
	} {
		bg, ok := bgOf[c.row]
		if !ok {
			t.Fatalf("the stylesheet has no background for %s", c.row)
		}
		check(c.row, c.fg, bg)
	}
	if checked < 20 {
		t.Errorf("checked only %d colour pairs: the parser misses rules", checked)
	}
}

var (
	controlRE = regexp.MustCompile(`(?s)<(input|select|textarea)\b([^>]*)>`)
	attrRE    = func(name string) *regexp.Regexp { return regexp.MustCompile(`\b` + name + `="([^"]*)"`) }
	idRE      = attrRE("id")
	typeRE    = attrRE("type")
)

// unlabelled lists the form controls of a page that have no label: a
// <label for=ID>, a wrapping <label>, aria-label or aria-labelledby.
func unlabelled(page string) []string {
	var out []string
	for _, m := range controlRE.FindAllStringSubmatchIndex(page, -1) {
		tag, attrs := page[m[2]:m[3]], page[m[4]:m[5]]
		if t := typeRE.FindStringSubmatch(attrs); t != nil && (t[1] == "hidden" || t[1] == "submit") {
			continue
		}
		if strings.Contains(attrs, "aria-label=") || strings.Contains(attrs, "aria-labelledby=") {
			continue
		}
		if id := idRE.FindStringSubmatch(attrs); id != nil && strings.Contains(page, `<label for="`+id[1]+`">`) {
			continue
		}
		// Wrapped: the nearest <label> before it is not closed before it.
		before := page[:m[0]]
		if i := strings.LastIndex(before, "<label"); i >= 0 && !strings.Contains(before[i:], "</label>") {
			continue
		}
		out = append(out, fmt.Sprintf("<%s%s>", tag, attrs))
	}
	return out
}

// TestConsoleLabels: every control of every console page (the forms of
// each role, with and without errors) has a label, every page has one h1,
// and a skip link to its main content.
func TestConsoleLabels(t *testing.T) {
	ts := newJobServer(t)
	setupConsolePages(t, ts)
	analyst := ts.key("ana", experiment.RoleAnalyst)
	pages := map[string]string{}
	anon := newBrowser(t, ts)
	anon.do("/login", nil)
	pages["/login"] = anon.last
	anon.do("/login", url.Values{"csrf": {anon.csrf()}, "key": {"lift_wrong"}})
	pages["/login (error)"] = anon.last
	for _, c := range []struct {
		key   string
		paths []string
	}{
		{ts.admin, []string{"/", "/experiments/new", "/experiments/checkout", "/holdouts", "/journeys", "/analyses", "/privacy", "/experiments/nope",
			"/metric-definitions", "/metric-definitions/revenue", "/templates", "/experiments/new?template=nope"}},
		{analyst, []string{"/", "/experiments/checkout", "/metric-definitions/revenue", "/templates"}},
		{ts.key("exec", experiment.RoleViewer), []string{"/", "/experiments/checkout", "/holdouts", "/privacy", "/metric-definitions", "/metric-definitions/revenue"}},
	} {
		b := newBrowser(t, ts)
		b.signIn(c.key)
		for _, p := range c.paths {
			b.do(p, nil)
			pages[p+" as "+c.key[:12]] = b.last
		}
		if c.key == ts.admin {
			b.do("/experiments/new", nil)
			b.do("/experiments/new", url.Values{"csrf": {b.csrf()}, "key": {"a b"}, "variants": {"control"}})
			pages["/experiments/new (errors)"] = b.last
			b.do("/analyses", nil)
			b.do("/analyses", url.Values{"csrf": {b.csrf()}, "kind": {"did"}, "from": {"x"}})
			pages["/analyses (errors)"] = b.last
			b.do("/metric-definitions/revenue", nil)
			b.do("/metric-definitions/revenue/versions", url.Values{"csrf": {b.csrf()}, "aggregation": {"sum"}, "event_type": {"purchase"}, "cap_percentile": {"2"}})
			pages["/metric-definitions/revenue (errors)"] = b.last
			b.do("/templates", nil)
			b.do("/templates", url.Values{"csrf": {b.csrf()}, "name": {"a b"}})
			pages["/templates (errors)"] = b.last
		}
	}
	for name, p := range pages {
		if u := unlabelled(p); len(u) > 0 {
			t.Errorf("%s: controls without a label: %q", name, u)
		}
		if n := strings.Count(p, "<h1"); n != 1 {
			t.Errorf("%s: %d h1 elements, want 1", name, n)
		}
		if !strings.Contains(p, `<a class="skip" href="#main">`) || !strings.Contains(p, `<main id="main">`) {
			t.Errorf("%s: no skip link to the main content", name)
		}
	}
	// unlabelled itself finds what it should.
	if u := unlabelled(`<input id="x" name="x"><label for="y">Y</label><input id="y">`); len(u) != 1 || !strings.Contains(u[0], `id="x"`) {
		t.Errorf("unlabelled: %q, want the first input", u)
	}
}
