package scenarios_test

import (
	"testing"

	"github.com/pgdrill/pgdrill/harness/drilltest"
)

func TestScenarios(t *testing.T) { drilltest.RunSpecs(t, "scenarios") }
