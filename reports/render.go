package reports

import (
	"bytes"
	"fmt"
	"io"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgpdf"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/liftlab/lift/experiment"
)

// Format is a chart file format.
type Format string

// The chart formats.
const (
	PNG Format = "png"
	SVG Format = "svg"
	PDF Format = "pdf"
)

// Formats lists every chart format.
func Formats() []Format { return []Format{PNG, SVG, PDF} }

// ParseFormat returns the format named by s ("png", "svg" or "pdf").
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case PNG, SVG, PDF:
		return f, nil
	}
	return "", experiment.E("reports.ParseFormat", experiment.Invalid, experiment.Field("format"), experiment.Errorf(`must be "png", "svg" or "pdf", got %q`, s))
}

// ContentType is the MIME type of f.
func (f Format) ContentType() string {
	switch f {
	case PNG:
		return "image/png"
	case SVG:
		return "image/svg+xml"
	case PDF:
		return "application/pdf"
	}
	return "application/octet-stream"
}

// RenderOptions size a chart.
type RenderOptions struct {
	Width, Height float64 // inches; default 7 × 4.5
	DPI           int     // PNG resolution, default 120 (840 × 540 pixels)
}

// DefaultRenderOptions returns 7 × 4.5 inches at 120 DPI.
func DefaultRenderOptions() RenderOptions { return RenderOptions{Width: 7, Height: 4.5, DPI: 120} }

func (o RenderOptions) withDefaults() RenderOptions {
	d := DefaultRenderOptions()
	if o.Width <= 0 {
		o.Width = d.Width
	}
	if o.Height <= 0 {
		o.Height = d.Height
	}
	if o.DPI <= 0 {
		o.DPI = d.DPI
	}
	return o
}

// Render draws c in format f to w. Bad chart data gives an experiment.Invalid error
// naming the chart and the field.
func Render(w io.Writer, c Chart, f Format, opt RenderOptions) error {
	op := "reports.Render(" + c.Name() + ")"
	opt = opt.withDefaults()
	p, err := c.build()
	if err != nil {
		return err
	}
	wd, ht := vg.Length(opt.Width)*vg.Inch, vg.Length(opt.Height)*vg.Inch
	var cw vg.CanvasWriterTo
	switch f {
	case PNG:
		cw = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(wd, ht), vgimg.UseDPI(opt.DPI))}
	case SVG:
		cw = vgsvg.New(wd, ht)
	case PDF:
		pc := vgpdf.New(wd, ht)
		pc.EmbedFonts(true)
		cw = pdfCanvas{pc}
	default:
		_, err := ParseFormat(string(f))
		return experiment.E(op, err)
	}
	drawPlot(p, cw, f)
	var err2 error
	if f == SVG {
		// Name fallbacks for viewers without the Liberation fonts.
		var b bytes.Buffer
		if _, err2 = cw.WriteTo(&b); err2 == nil {
			_, err2 = w.Write(bytes.ReplaceAll(b.Bytes(), []byte("font-family:Liberation Sans;"), []byte("font-family:'Liberation Sans',Arial,Helvetica,sans-serif;")))
		}
	} else {
		_, err2 = cw.WriteTo(w)
	}
	if err2 != nil {
		return experiment.E(op, experiment.Internal, fmt.Errorf("writing %s: %w", f, err2))
	}
	return nil
}

// Bytes renders c in format f and returns the bytes.
func Bytes(c Chart, f Format, opt RenderOptions) ([]byte, error) {
	var b bytes.Buffer
	if err := Render(&b, c, f, opt); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// drawPlot draws p on c, in a margin since gonum draws tick labels flush with the
// canvas edge; for PDF, text is laid out as the PDF prints it (pdfText).
func drawPlot(p *plot.Plot, c vg.CanvasSizer, f Format) {
	if f == PDF {
		pdfText(p)
	}
	m := vg.Points(8)
	p.Draw(draw.Crop(draw.New(c), m, -m, m/2, -m/2))
}
