package reports

import (
	"strings"

	"golang.org/x/text/encoding/charmap"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/vgpdf"
)

// pdfCanvas is a vgpdf canvas whose text is transcoded from UTF-8 to Windows-1252,
// the only encoding vgpdf's fonts use: without it "ε" or "·" print as mojibake.
// Characters outside Windows-1252 are spelled out (ε → "epsilon") or replaced by "?".
type pdfCanvas struct{ *vgpdf.Canvas }

var pdfSpelled = strings.NewReplacer("ε", "epsilon", "δ", "delta", "θ", "theta", "α", "alpha", "≤", "<=", "≥", ">=", "−", "-", "×", "x")

func toCP1252(s string) string {
	s = pdfSpelled.Replace(s)
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r < 0x80 {
			b = append(b, byte(r))
			continue
		}
		if c, ok := charmap.Windows1252.EncodeRune(r); ok {
			b = append(b, c)
		} else {
			b = append(b, '?')
		}
	}
	return string(b)
}

// FillString draws str transcoded to Windows-1252.
func (c pdfCanvas) FillString(f font.Face, pt vg.Point, str string) {
	c.Canvas.FillString(f, pt, toCP1252(str))
}
