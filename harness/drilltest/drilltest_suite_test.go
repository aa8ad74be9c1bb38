package drilltest

import "testing"

func TestDrilltest(t *testing.T) { RunSpecs(t, "drilltest") }
