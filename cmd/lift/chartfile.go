package main

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/reports"
)

// chartFormat is the chart format of a --chart file, by its extension.
func chartFormat(path string) (reports.Format, error) {
	ext := strings.TrimPrefix(strings.ToLower(filepath.Ext(path)), ".")
	f, err := reports.ParseFormat(ext)
	if err != nil {
		return "", experiment.E("chart", experiment.Invalid, experiment.Field("--chart"), experiment.Errorf("must end in .svg, .png or .pdf, got %q", path))
	}
	return f, nil
}

// writeChart renders ch into path in the format its extension names.
func writeChart(path string, ch reports.Chart) error {
	f, err := chartFormat(path)
	if err != nil {
		return err
	}
	b, err := reports.Bytes(ch, f, reports.RenderOptions{})
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return experiment.E("chart", experiment.Invalid, experiment.Field("--chart"), err)
	}
	return nil
}
