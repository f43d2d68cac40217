// Package deps pins the module's dependencies while packages are being written in
// parallel; it is removed once every dependency is imported by its real home.
package deps

import (
	_ "github.com/ebitengine/purego"
	_ "github.com/go-co-op/gocron/v2"
	_ "github.com/google/differential-privacy/go/v3/noise"
	_ "github.com/growthbook/growthbook-golang"
	_ "github.com/labstack/echo/v4"
	_ "github.com/marcboeker/go-duckdb/v2"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/schollz/progressbar/v3"
	_ "golang.org/x/term"
	_ "gonum.org/v1/gonum/stat/distuv"
	_ "gonum.org/v1/plot"
)
