package metric_test

import (
	"testing"

	"github.com/liftlab/lift/metric"
	"github.com/liftlab/lift/metric/metrictest"
)

func TestMemoryConformance(t *testing.T) {
	metrictest.Run(t, func(t *testing.T, d metric.Dataset) metric.Engine { return metric.NewMemory(d) })
}
