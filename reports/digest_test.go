package reports

import (
	"bytes"
	"html"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
)

func sampleDigest() *Digest {
	p := time.Date(2026, 11, 16, 9, 0, 0, 0, time.UTC)
	started := p.AddDate(0, 0, -28)
	d := &Digest{
		Title: "Weekly incrementality: checkout redesign", Subject: "checkout", Period: p, GeneratedAt: p.Add(time.Minute),
		Headline: &Headline{Metric: "revenue", Variant: "treatment", Level: 0.95, Lift: Interval{Estimate: 0.048, Low: 0.012, High: 0.084}, Units: 100000},
		Verdict:  "The redesign raised revenue per unit by about 4.8%.",
		Guardrails: []Guardrail{
			{Metric: "unsubscribes", Variant: "treatment", Lift: &Interval{Estimate: 0.01, Low: -0.05, High: 0.07}, Status: experiment.GuardrailUnclear},
			{Metric: "refunds", Variant: "treatment", Lift: &Interval{Estimate: -0.06, Low: -0.09, High: -0.03}, Status: experiment.GuardrailHolding},
			{Metric: "complaints", Variant: "treatment", Lift: &Interval{Estimate: 0.30, Low: 0.10, High: 0.50}, Status: experiment.GuardrailBreached, Breach: true},
			{Metric: "returns", Variant: "treatment", Status: experiment.GuardrailUnclear},
		},
		Privacy: Privacy{Private: true, Epsilon: 0.5},
		Started: &started,
		Arms:    []ArmUnits{{Arm: "control", Units: 50012}, {Arm: "treatment", Units: 49_988}},
	}
	for i := 3; i >= 0; i-- {
		d.Trend = append(d.Trend, TimeEffect{Time: p.AddDate(0, 0, -7*i), Interval: Interval{Estimate: 0.03 + 0.006*float64(3-i), Low: 0.0 + 0.004*float64(3-i), High: 0.07 + 0.004*float64(3-i)}})
	}
	return d
}

func TestDigestDocuments(t *testing.T) {
	d := sampleDigest()
	h, err := d.HTMLBytes()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"revenue (treatment vs control): +4.8% (95% CI +1.2% to +8.4%)",
		"DP-noised (ε = 0.5)", "<svg", "breached", "holding", "not yet clear", "The redesign raised revenue",
		"Running since 2026-10-19 (28 days to this period)", "Units: control 50,012 · treatment 49,988",
		"ε = 0.5 is the privacy guarantee", "e^ε (about 1.65)", "not enough data yet",
	} {
		if !strings.Contains(html.UnescapeString(string(h)), want) {
			t.Errorf("digest HTML lacks %q", want)
		}
	}
	if bytes.Contains(h, []byte("<script")) {
		t.Error("digest HTML must be static")
	}
	pdf, err := d.PDFBytes()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(pdf, []byte("%PDF-")) || len(pdf) < 5000 {
		t.Errorf("PDF: %d bytes starting %q", len(pdf), pdf[:min(8, len(pdf))])
	}
	if dir := os.Getenv("LIFT_DIGEST_OUT"); dir != "" { // for looking at the pages by eye
		os.WriteFile(filepath.Join(dir, "digest.pdf"), pdf, 0o644)
		os.WriteFile(filepath.Join(dir, "digest.html"), h, 0o644)
	}
	// A digest without a result yet still renders and says so.
	empty := &Digest{Title: "t", Verdict: "Not enough data yet.", Privacy: Privacy{Private: true, Epsilon: 1}}
	h2, err := empty.HTMLBytes()
	if err != nil || !strings.Contains(string(h2), "No result yet") {
		t.Errorf("empty digest: %v", err)
	}
	if _, err := empty.PDFBytes(); err != nil {
		t.Error(err)
	}
}

func TestDigestDates(t *testing.T) {
	at := func(d int) *time.Time { x := time.Date(2026, 11, d, 9, 0, 0, 0, time.UTC); return &x }
	for _, c := range []struct {
		started, ended *time.Time
		want           string
	}{
		{nil, nil, ""},
		{at(2), nil, "Running since 2026-11-02 (14 days to this period)"},
		{at(15), nil, "Running since 2026-11-15 (1 day to this period)"},
		{at(16), nil, "Running since 2026-11-16 (under a day to this period)"},
		{at(2), at(9), "From 2026-11-02 to 2026-11-09 (7 days)"},
		{at(2), at(20), "Running since 2026-11-02 (14 days to this period)"}, // ends after the period
	} {
		d := &Digest{Period: *at(16), Started: c.started, Ended: c.ended}
		if got := d.DatesText(); got != c.want {
			t.Errorf("started %v ended %v: %q, want %q", c.started, c.ended, got, c.want)
		}
	}
}

func TestSignedPercent(t *testing.T) {
	for _, c := range []struct {
		x    float64
		want string
	}{{0.048, "+4.8%"}, {-0.0004, "+0.0%"}, {0.0004, "+0.0%"}, {-0.0005001, "-0.1%"}, {-1.5, "-150.0%"}} {
		if got := SignedPercent(c.x); got != c.want {
			t.Errorf("SignedPercent(%g) = %q, want %q", c.x, got, c.want)
		}
	}
}

func TestWrap(t *testing.T) {
	got := wrap("the quick brown fox jumps over the lazy dog", 10)
	want := []string{"the quick", "brown fox", "jumps over", "the lazy", "dog"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("wrap = %q, want %q", got, want)
	}
}
