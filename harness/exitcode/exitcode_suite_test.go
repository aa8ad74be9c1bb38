package exitcode_test

import (
	"testing"

	"github.com/pgdrill/pgdrill/harness/drilltest"
)

func TestExitcode(t *testing.T) { drilltest.RunSpecs(t, "exitcode") }
