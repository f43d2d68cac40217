package reports

import (
	"math"
	"strings"
	"testing"

	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/vgpdf"
)

// textRecorder records where text is drawn on a canvas.
type textRecorder struct {
	vg.CanvasSizer
	texts []drawnText
}

type drawnText struct {
	s        string
	x, width vg.Length
}

func (r *textRecorder) FillString(f font.Face, pt vg.Point, s string) {
	r.texts = append(r.texts, drawnText{s, pt.X, f.Width(pdfSpell(s))})
	r.CanvasSizer.FillString(f, pt, s)
}

// TestPDFTitleCentred draws each sample chart as the PDF renderer does and checks
// that both title lines are centred on the page, the privacy caption included:
// it prints "epsilon" for "ε", and was placed by the width of "ε" (9 points off).
func TestPDFTitleCentred(t *testing.T) {
	pr := Privacy{Private: true, Epsilon: 0.5}
	for _, c := range sampleCharts(pr) {
		p, err := c.build()
		if err != nil {
			t.Fatal(err)
		}
		wd := vg.Length(7) * vg.Inch
		rec := &textRecorder{CanvasSizer: pdfCanvas{vgpdf.New(wd, vg.Length(4.5)*vg.Inch)}}
		drawPlot(p, rec, PDF)
		title := strings.Split(p.Title.Text, "\n")
		found := 0
		for _, d := range rec.texts {
			for _, line := range title {
				if pdfSpell(line) != pdfSpell(d.s) {
					continue
				}
				found++
				// The plot is drawn inside equal left and right margins.
				if mid := d.x + d.width/2; math.Abs(float64(mid-wd/2)) > 0.5 {
					t.Errorf("%s: title line %q is centred at %.1f pt, the page at %.1f pt", c.Name(), d.s, mid, wd/2)
				}
			}
		}
		if found != len(title) {
			t.Errorf("%s: found %d of the %d title lines %q among the drawn texts", c.Name(), found, len(title), title)
		}
	}
}
