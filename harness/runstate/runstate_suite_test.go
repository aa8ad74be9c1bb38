package runstate_test

import (
	"testing"

	"github.com/pgdrill/pgdrill/harness/drilltest"
)

func TestRunstate(t *testing.T) { drilltest.RunSpecs(t, "runstate") }
