package reports

import (
	"bytes"
	"fmt"
	"strconv"
)

// MetricDefinition is the version of a metric's definition a report's
// results read, beside the metric's current version: a started experiment
// keeps the version it pinned when it started, so a newer definition does not
// change its results.
type MetricDefinition struct {
	Metric  string `json:"metric"`
	Version int    `json:"version"`         // the version the results read
	Current int    `json:"current_version"` // the metric's current version
	// Pinned says the experiment pinned Version when it started (a draft
	// reads the current version).
	Pinned bool `json:"pinned"`
}

// Newer says a newer version than the one read exists.
func (d MetricDefinition) Newer() bool { return d.Current > d.Version }

// Text is the definition's line: "revenue v1 (pinned; v2 is current)".
func (d MetricDefinition) Text() string {
	s := d.Metric + " v" + strconv.Itoa(d.Version)
	switch {
	case d.Newer():
		s += fmt.Sprintf(" (pinned at the start; v%d is current and is not used here)", d.Current)
	case d.Pinned:
		s += " (pinned at the start; current)"
	default:
		s += " (current: pinned when the experiment starts)"
	}
	return s
}

// definitionsHTML is the template of the metric definitions' table, after the
// views.
const definitionsHTML = `{{define "definitions"}}{{with .R.Definitions}}<h2 id="definitions">Metric definitions</h2>
<table id="definitions-table"><thead><tr><th>metric</th><th>version read</th><th>current version</th><th>note</th></tr></thead><tbody>
{{range .}}<tr data-definition="{{.Metric}}"{{if .Newer}} class="newer"{{end}}><td>{{.Metric}}</td><td class="version">v{{.Version}}</td><td class="current">v{{.Current}}</td><td>{{if .Newer}}<strong>a newer version exists</strong>: this experiment keeps v{{.Version}}, which it pinned when it started{{else if .Pinned}}pinned when it started{{else}}a draft reads the current version until it starts{{end}}</td></tr>
{{end}}</tbody></table>{{end}}{{end}}`

// definitionsMarkdown writes the metric definitions' section.
func (r *Report) definitionsMarkdown(b *bytes.Buffer) {
	if len(r.Definitions) == 0 {
		return
	}
	b.WriteString("## Metric definitions\n\n")
	for _, d := range r.Definitions {
		fmt.Fprintf(b, "- %s\n", d.Text())
	}
	b.WriteString("\n")
}
