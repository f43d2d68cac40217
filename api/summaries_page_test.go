package api

import (
	"bytes"
	"context"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
)

// TestSummariesPageForExecutives opens /summaries as a browser does (the key in
// the address once, then the cookie only) and follows every link on it: each
// must answer 200 with the page's own cookie (the PDF link answered 401). The
// pages carry what an executive needs to act: units per arm, the start date and
// duration, what ε means, and a trend chart whose axis is labelled with dates.
func TestSummariesPageForExecutives(t *testing.T) {
	ts := newJobServer(t)
	setupPrivate(t, ts)
	ts.must(http.StatusOK, "PUT", "/v1/experiments/checkout/privacy", map[string]any{"epsilon": 2, "release_epsilon": 0.5}, nil)
	viewer := ts.key("exec", experiment.RoleViewer)
	ts.must(http.StatusCreated, "POST", "/v1/jobs", map[string]any{"name": "weekly", "kind": "digest", "cron": "0 9 * * 1", "target": "checkout"}, nil)
	ctx := context.Background()
	j, err := ts.db.GetJob(ctx, "weekly")
	if err != nil {
		t.Fatal(err)
	}
	first, err := BuildDigest(ctx, ts.db, ResultsOver(ts.db), j, time.Now().Add(-7*24*time.Hour).Truncate(time.Second), "checkout", DigestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.db.PublishDigest(ctx, first); err != nil {
		t.Fatal(err)
	}
	ts.must(http.StatusOK, "POST", "/v1/jobs/weekly/run", nil, nil)

	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	browser := &http.Client{Jar: jar}
	get := func(path string) (int, string, []byte) {
		t.Helper()
		resp, err := browser.Get(ts.http.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header.Get("Content-Type"), b
	}
	status, _, page := get("/summaries?key=" + viewer)
	if status != 200 {
		t.Fatalf("/summaries: %d %s", status, page)
	}
	text := html.UnescapeString(string(page))
	for _, want := range []string{"Units: control", "Running since", "DP-noised (ε = 0.5)", "ε is its privacy guarantee"} {
		if !strings.Contains(text, want) {
			t.Errorf("/summaries lacks %q:\n%s", want, text)
		}
	}
	// The summaries' links (the console's navigation around them is tested with the console).
	links := regexp.MustCompile(`href="(/summaries/[^"]+)"`).FindAllStringSubmatch(string(page), -1)
	var pdfs, pages int
	for _, l := range links {
		href := html.UnescapeString(l[1])
		status, ctype, body := get(href)
		if status != 200 {
			t.Errorf("link %s on /summaries answers %d with the page's cookie: %s", href, status, body)
			continue
		}
		switch {
		case strings.HasPrefix(ctype, "application/pdf"):
			pdfs++
			if !bytes.HasPrefix(body, []byte("%PDF-")) {
				t.Errorf("%s is not a PDF", href)
			}
		case strings.HasPrefix(ctype, "text/html"):
			pages++
		}
	}
	if pdfs != 2 || pages != 4 {
		t.Errorf("/summaries links to %d PDFs and %d pages, want 2 PDFs and 4 page links (title and \"page\" of each)", pdfs, pages)
	}
	// The newest summary's page: its trend chart's axis carries dates.
	status, _, sp := get("/summaries/" + strings.TrimPrefix(string(regexp.MustCompile(`/summaries/[^"/?]+`).Find(page)), "/summaries/"))
	svg := string(sp)
	if i := strings.Index(svg, "<svg"); status != 200 || i < 0 {
		t.Fatalf("summary page %d without a chart", status)
	} else {
		svg = svg[i:]
	}
	if !regexp.MustCompile(`>(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{1,2}<`).MatchString(svg) {
		t.Errorf("the trend chart's axis has no date label:\n%.2000s", svg)
	}
}
