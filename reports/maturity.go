package reports

import (
	"strconv"
)

// DailyMaturity is, for a primary metric with a matured-only window (a day-N
// retention metric), what each day of the daily series counts: the units
// exposed by the end of the day, the units whose window had ended by then
// (the denominator of that day's point), and whether the day's cohort has
// matured since. Exact reports only, as the daily series.
type DailyMaturity struct {
	Metric        string        `json:"metric"`
	WindowEndDays float64       `json:"window_end_days"`
	Days          []MaturityDay `json:"days"`
}

// MaturityDay is one day of DailyMaturity; Denominators and Units are per
// arm, in Arms order.
type MaturityDay struct {
	Date          string   `json:"date"`
	Arms          []string `json:"arms"`
	Units         []int64  `json:"units"`
	Denominators  []int64  `json:"denominators"`
	Share         float64  `json:"share"`
	CohortMatured bool     `json:"cohort_matured"`
}

type maturityView struct {
	Metric, End string
	Arms        []string
	Days        []maturityRow
}

type maturityRow struct {
	Date, Share string
	Cells       []string // "denominator of units" per arm
	Matured     bool
}

func (r *Report) maturity() *maturityView {
	m := r.Maturity
	if m == nil || len(m.Days) == 0 {
		return nil
	}
	v := &maturityView{Metric: m.Metric, End: strconv.FormatFloat(m.WindowEndDays, 'f', -1, 64), Arms: m.Days[0].Arms}
	for _, d := range m.Days {
		row := maturityRow{Date: d.Date, Share: fmtShare(d.Share), Matured: d.CohortMatured}
		for i := range d.Arms {
			var n, u int64
			if i < len(d.Denominators) {
				n = d.Denominators[i]
			}
			if i < len(d.Units) {
				u = d.Units[i]
			}
			row.Cells = append(row.Cells, strconv.FormatInt(n, 10)+" of "+strconv.FormatInt(u, 10))
		}
		v.Days = append(v.Days, row)
	}
	return v
}

// maturityHTML is the template of the maturity table, after the views.
const maturityHTML = `{{define "maturity"}}{{with .M}}
<h2 id="maturity">Maturity of {{.Metric}} by day</h2>
<table id="maturity-table"><caption class="meta">{{.Metric}} counts a unit only once its window has ended ({{.End}} days after its first exposure): each day's point of the daily series counts the units matured by the end of that day</caption><thead><tr><th>day</th>{{range .Arms}}<th>{{.}}: denominator of units exposed</th>{{end}}<th>share counted</th><th>day's cohort</th></tr></thead><tbody>
{{range .Days}}<tr data-date="{{.Date}}"{{if not .Matured}} class="nes"{{end}}><td>{{.Date}}</td>{{range .Cells}}<td class="den">{{.}}</td>{{end}}<td class="share">{{.Share}}</td><td class="matured">{{if .Matured}}matured{{else}}not yet matured{{end}}</td></tr>
{{end}}</tbody></table>{{end}}{{end}}`
