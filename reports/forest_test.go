package reports

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// TestForestWideInterval: one interval thousands of times wider than the others
// (a holdout cohort with no units, issue 13 item 12) must not squash the other
// rows into dots. The axis fits the other rows, the wide one is clipped with an
// arrow at the edge and its true bounds printed on its row, and the chart says so
// in its note (HTML figcaption, Markdown) and on the image (every format).
func TestForestWideInterval(t *testing.T) {
	// minFrac: a readable row spans at least 5% of the axis (about 30 px of the
	// 600-px-wide data area of the default 840-px PNG).
	const minFrac = 0.05
	for _, tc := range []struct {
		name    string
		effects []Effect
		wide    []int // indices of the rows that must be clipped
	}{
		{"one wide on both sides", []Effect{
			{Label: "revenue: treatment", Interval: Interval{2.4, 0.9, 3.9}},
			{Label: "clicks: treatment", Interval: Interval{2, 0.2, 3.8}},
			{Label: "checkout_rate: treatment", Interval: Interval{-3, -5, -1}},
			{Label: "empty cohort: treatment", Interval: Interval{631.8, -222223.5, 223487}},
		}, []int{3}},
		{"one wide on the right", []Effect{
			{Label: "a: t", Interval: Interval{1, -1, 3}},
			{Label: "b: t", Interval: Interval{300, 10, 900}},
		}, []int{1}},
		{"similar widths, nothing clipped", []Effect{
			{Label: "a: t", Interval: Interval{1, -1, 3}},
			{Label: "b: t", Interval: Interval{5, 1, 9}},
			{Label: "c: t", Interval: Interval{-2, -6, 2}},
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Forest{Unit: "relative lift, %", Level: 0.95, Effects: tc.effects}
			p, err := c.build()
			if err != nil {
				t.Fatal(err)
			}
			span := p.X.Max - p.X.Min
			isWide := map[int]bool{}
			for _, i := range tc.wide {
				isWide[i] = true
			}
			for i, e := range tc.effects {
				frac := (e.High - e.Low) / span
				if !isWide[i] && frac < minFrac {
					t.Errorf("row %q spans %.4f%% of the axis [%g, %g], want at least %g%%", e.Label, 100*frac, p.X.Min, p.X.Max, 100*minFrac)
				}
				if !isWide[i] && (e.Low < p.X.Min || e.High > p.X.Max) {
					t.Errorf("row %q [%g, %g] is not inside the axis [%g, %g]", e.Label, e.Low, e.High, p.X.Min, p.X.Max)
				}
			}
			if !(p.X.Min <= 0 && p.X.Max >= 0) {
				t.Errorf("the axis [%g, %g] leaves out the zero line", p.X.Min, p.X.Max)
			}
			note := chartNote(c)
			svg, err := Bytes(c, SVG, RenderOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(tc.wide) == 0 {
				if note != "" {
					t.Errorf("nothing is clipped, yet the note says %q", note)
				}
				if bytes.Contains(svg, []byte("beyond the axis")) {
					t.Error("nothing is clipped, yet the SVG speaks of clipping")
				}
				return
			}
			for _, i := range tc.wide {
				e := tc.effects[i]
				if !strings.Contains(note, e.Label) {
					t.Errorf("the note %q does not name the clipped row %q", note, e.Label)
				}
				bounds := fmtBound(e.Low) + " to " + fmtBound(e.High)
				if !strings.Contains(note, bounds) {
					t.Errorf("the note %q does not give the true bounds %q", note, bounds)
				}
				if !bytes.Contains(svg, []byte(bounds)) {
					t.Errorf("the SVG does not print the true bounds %q on the clipped row", bounds)
				}
			}
			if !bytes.Contains(svg, []byte("beyond the axis")) {
				t.Error("the SVG does not say that arrows mark intervals beyond the axis")
			}
			if n := countArrows(svg); n == 0 {
				t.Error("no arrow marks the clipped interval")
			}
			// PNG and PDF are drawn from the same plot; they must render.
			for _, f := range []Format{PNG, PDF} {
				if _, err := Bytes(c, f, RenderOptions{}); err != nil {
					t.Errorf("%s: %v", f, err)
				}
			}
			// The note reaches the HTML figure caption and the Markdown.
			r := &Report{Experiment: "x", Name: "x", Charts: []Chart{c}}
			var h, md bytes.Buffer
			if err := r.HTML(&h, RenderOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := r.Markdown(&md, "plots"); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(h.String(), "beyond the axis") || !strings.Contains(md.String(), "beyond the axis") {
				t.Error("the HTML caption or the Markdown lacks the clipping note")
			}
		})
	}
}

// arrowRE matches a filled triangle in the SVG (an arrowhead: a closed path of
// three points); the estimate dots are arcs and the interval lines are not closed.
var arrowRE = regexp.MustCompile(`<path d="M-?[0-9.]+,-?[0-9.]+L-?[0-9.]+,-?[0-9.]+L-?[0-9.]+,-?[0-9.]+Z"`)

// countArrows counts the arrowheads in a forest's SVG.
func countArrows(svg []byte) int { return len(arrowRE.FindAll(svg, -1)) }

// TestForestWeakRows: in a DP report, a row without enough signal is drawn in
// grey, not in the blue of a readable estimate, and the chart's note says what
// grey means.
func TestForestWeakRows(t *testing.T) {
	c := &Forest{Unit: "relative lift, %", Level: 0.95, Privacy: Privacy{Private: true, Epsilon: 0.5}, Effects: []Effect{
		{Label: "revenue: treatment", Interval: Interval{Estimate: 6, Low: -19, High: 40}, Weak: true},
		{Label: "converted: treatment", Interval: Interval{Estimate: 2, Low: 1, High: 3}},
	}}
	svg, err := Bytes(c, SVG, RenderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(svg, []byte("stroke:#A0A0A0")) {
		t.Error("the row without enough signal is not drawn in grey")
	}
	if !bytes.Contains(svg, []byte("stroke:#0072B2")) {
		t.Error("the readable row is not drawn in blue")
	}
	if n := chartNote(c); !strings.Contains(n, "Grey rows") || !strings.Contains(n, "not enough signal") {
		t.Errorf("the note %q does not say what grey rows are", n)
	}
}
