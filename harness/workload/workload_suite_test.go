package workload_test

import (
	"testing"

	"github.com/pgdrill/pgdrill/harness/drilltest"
)

func TestWorkload(t *testing.T) { drilltest.RunSpecs(t, "workload") }
