package reports

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// PrivateSegment is one released segment of a differentially private
// breakdown: noised unit counts and means per arm and the effect's interval.
type PrivateSegment struct {
	Segment     string   `json:"segment"`
	Units       int64    `json:"units"` // the noised count that passed the threshold
	Control     int64    `json:"control_units"`
	Treated     int64    `json:"treated_units"`
	ControlMean float64  `json:"control_mean"`
	TreatedMean float64  `json:"treated_mean"`
	Absolute    Estimate `json:"absolute"`
	// Signal is why the noise dominates the effect ("" when it does not).
	Signal string `json:"not_enough_signal,omitempty"`
}

// PrivateSegments is a breakdown of one metric's effect by a unit attribute
// under differential privacy, released by partition selection: a segment is
// shown only when its noised unit count passed Threshold; the others are
// suppressed, and how many is not released.
type PrivateSegments struct {
	Metric    string           `json:"metric"`
	Attribute string           `json:"attribute"`
	Control   string           `json:"control"`
	Treatment string           `json:"treatment"`
	Threshold float64          `json:"threshold"`
	Epsilon   float64          `json:"epsilon"` // what the breakdown's release spent
	Segments  []PrivateSegment `json:"segments"`
}

type privSegRow struct {
	Segment, Units, Control, Treated, ControlMean, TreatedMean, Effect, P, Signal string
}

func (s *PrivateSegments) rows() []privSegRow {
	out := make([]privSegRow, len(s.Segments))
	for i, x := range s.Segments {
		out[i] = privSegRow{Segment: x.Segment, Units: strconv.FormatInt(x.Units, 10), Control: strconv.FormatInt(x.Control, 10), Treated: strconv.FormatInt(x.Treated, 10),
			ControlMean: fmtNum(x.ControlMean), TreatedMean: fmtNum(x.TreatedMean), Effect: fmtCI(x.Absolute, false), P: fmtP(x.Absolute.PValue), Signal: x.Signal}
	}
	return out
}

// Suppressed is the sentence on the segments partition selection left out.
func (s *PrivateSegments) Suppressed() string {
	return fmt.Sprintf("Segments are released by partition selection: a segment is shown only when its noised unit count passes %s; smaller segments are suppressed, and neither they nor their number are shown. This breakdown spent ε = %s from the experiment's budget (once per release period).",
		fmtNum(s.Threshold), strconv.FormatFloat(s.Epsilon, 'g', -1, 64))
}

// privateSegmentsHTML is the template of a DP report's segment breakdown.
const privateSegmentsHTML = `{{define "privsegments"}}{{with .R.PrivateSegments}}<h2 id="private-segments">Segments of {{.Metric}} by {{.Attribute}} (differentially private)</h2>
{{if .Segments}}<table id="private-segments-table"><thead><tr><th>segment</th><th>units (noised)</th><th>units ({{.Control}})</th><th>units ({{.Treatment}})</th><th>mean ({{.Control}})</th><th>mean ({{.Treatment}})</th><th>absolute effect [{{$.Level}} CI]</th><th>p-value</th></tr></thead><tbody>
{{range .Rows}}<tr data-private-segment="{{.Segment}}"{{if .Signal}} class="nes" title="{{.Signal}}"{{end}}><td>{{.Segment}}</td><td>{{.Units}}</td><td>{{.Control}}</td><td>{{.Treated}}</td><td>{{.ControlMean}}</td><td>{{.TreatedMean}}</td><td>{{.Effect}}</td><td>{{.P}}</td></tr>
{{end}}</tbody></table>{{else}}<p id="private-segments-none">No segment passed the threshold: every segment is suppressed.</p>{{end}}
<p class="meta" id="private-segments-suppressed">{{.Suppressed}}</p>{{end}}{{end}}`

// Rows are the breakdown's table rows, formatted.
func (s *PrivateSegments) Rows() []privSegRow { return s.rows() }

// privateSegmentsMarkdown writes a DP report's segment breakdown.
func (r *Report) privateSegmentsMarkdown(b *bytes.Buffer) {
	s := r.PrivateSegments
	if s == nil {
		return
	}
	md := strings.NewReplacer("|", `\|`, "\n", " ", "<", "&lt;", ">", "&gt;")
	fmt.Fprintf(b, "## Segments of %s by %s (differentially private)\n\n", md.Replace(s.Metric), md.Replace(s.Attribute))
	if len(s.Segments) > 0 {
		fmt.Fprintf(b, "| segment | units (noised) | units (%s) | units (%s) | mean (%s) | mean (%s) | absolute effect [%s CI] | p-value |\n|---|--:|--:|--:|--:|--:|--:|--:|\n",
			md.Replace(s.Control), md.Replace(s.Treatment), md.Replace(s.Control), md.Replace(s.Treatment), r.level())
		for _, x := range s.rows() {
			fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", md.Replace(x.Segment), x.Units, x.Control, x.Treated, x.ControlMean, x.TreatedMean, x.Effect, x.P)
		}
		b.WriteString("\n")
	} else {
		b.WriteString("No segment passed the threshold: every segment is suppressed.\n\n")
	}
	fmt.Fprintf(b, "%s\n\n", s.Suppressed())
}
