// Package reports draws an experiment's charts and writes its documents.
//
// Charts (gonum/plot) render as PNG, SVG or PDF: the effect per metric with its
// confidence interval (Forest), the cumulative effect over time with a confidence
// band (Cumulative), exposure counts with the sample-ratio-mismatch p-value
// (Exposures), holdout incrementality over time (Incrementality),
// difference-in-differences trends (DiDTrends) and event-study coefficients
// (EventStudy), and Qini and uplift curves (Qini, UpliftCurve). Their inputs are plain
// structs of points, intervals and labels, so this package depends on no analysis
// package; every chart says in its title whether its numbers are "exact" or
// "DP-noised (ε = …)".
//
// A Report gathers a results table and charts and writes itself as self-contained
// HTML (charts inlined as SVG), Markdown, CSV and JSON, or as a folder with every
// chart in every format (WriteDir). SVG output is deterministic, so it is tested
// against golden files.
package reports
