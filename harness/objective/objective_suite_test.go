package objective_test

import (
	"testing"

	"github.com/pgdrill/pgdrill/harness/drilltest"
)

func TestObjective(t *testing.T) { drilltest.RunSpecs(t, "objective") }
