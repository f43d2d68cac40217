package main

import (
	"context"
	"fmt"

	"github.com/liftlab/lift/assign"
	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/store"
)

// demoDevices are the device attribute's values and their shares of units.
var demoDevices = []struct {
	name  string
	share uint32 // per 100
}{{"desktop", 50}, {"phone", 40}, {"tablet", 10}}

// demoDevice is a unit's device, from the hash of its id (so that the
// simulation's random draws, and with them its outcomes, are unchanged).
func demoDevice(unit string) string {
	b := assign.Fnv32a("device:"+unit) % 100
	for _, d := range demoDevices {
		if b < d.share {
			return d.name
		}
		b -= d.share
	}
	return demoDevices[len(demoDevices)-1].name
}

// attributes stores a device attribute for every exposed or held-out unit, as
// POST /v1/units would: the report and console break the experiment's effects
// down by it.
func (d *demo) attributes(ctx context.Context) error {
	const batch = 10_000
	us := make([]store.UnitAttributes, 0, batch)
	n := 0
	for _, group := range [][]experiment.Exposure{d.exposed, d.heldOut} {
		for i, x := range group {
			us = append(us, store.UnitAttributes{Unit: x.Unit, Attributes: map[string]any{"device": demoDevice(x.Unit)}})
			if len(us) == batch || i == len(group)-1 {
				k, err := d.db.UpsertUnitAttributes(ctx, us)
				if err != nil {
					return err
				}
				n += k
				us = us[:0]
			}
		}
	}
	fmt.Fprintf(d.out, "Unit attributes: device (desktop 50%%, phone 40%%, tablet 10%%) for %d units.\n", n)
	return nil
}
