package reports

import (
	"strings"

	"golang.org/x/text/encoding/charmap"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgpdf"
)

// pdfCanvas is a vgpdf canvas whose text is transcoded from UTF-8 to Windows-1252,
// the only encoding vgpdf's fonts use: without it "ε" or "·" print as mojibake.
// Characters outside Windows-1252 are spelled out (ε → "epsilon") or replaced by "?".
type pdfCanvas struct{ *vgpdf.Canvas }

var pdfSpelled = strings.NewReplacer("ε", "epsilon", "δ", "delta", "θ", "theta", "α", "alpha", "≤", "<=", "≥", ">=", "−", "-", "×", "x")

// pdfSpell returns s as the PDF prints it, still in UTF-8: spelled out where
// Windows-1252 lacks a character, "?" where nothing can be spelled.
func pdfSpell(s string) string {
	s = pdfSpelled.Replace(s)
	return strings.Map(func(r rune) rune {
		if _, ok := charmap.Windows1252.EncodeRune(r); r >= 0x80 && !ok {
			return '?'
		}
		return r
	}, s)
}

func toCP1252(s string) string {
	s = pdfSpell(s)
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r < 0x80 {
			b = append(b, byte(r))
			continue
		}
		c, _ := charmap.Windows1252.EncodeRune(r)
		b = append(b, c)
	}
	return string(b)
}

// FillString draws str transcoded to Windows-1252.
func (c pdfCanvas) FillString(f font.Face, pt vg.Point, str string) {
	c.Canvas.FillString(f, pt, toCP1252(str))
}

// pdfTextHandler lays text out as the PDF prints it (pdfSpell), so that centred
// and right-aligned text is placed by the width of what is drawn: measured on
// "ε = 0.5", the printed "epsilon = 0.5" sat off-centre.
type pdfTextHandler struct{ text.Handler }

func (h pdfTextHandler) Box(txt string, f font.Font) (w, ht, d vg.Length) {
	return h.Handler.Box(pdfSpell(txt), f)
}

func (h pdfTextHandler) Draw(c vg.Canvas, txt string, sty text.Style, pt vg.Point) {
	h.Handler.Draw(c, pdfSpell(txt), sty, pt)
}

// pdfText makes every text of p lay out as the PDF prints it (see pdfTextHandler).
func pdfText(p *plot.Plot) {
	for _, s := range []*draw.TextStyle{&p.Title.TextStyle, &p.X.Label.TextStyle, &p.Y.Label.TextStyle, &p.X.Tick.Label, &p.Y.Tick.Label, &p.Legend.TextStyle} {
		if _, done := s.Handler.(pdfTextHandler); !done && s.Handler != nil {
			s.Handler = pdfTextHandler{s.Handler}
		}
	}
}
