package atomicfile_test

import (
	"testing"

	"github.com/pgdrill/pgdrill/harness/drilltest"
)

func TestAtomicfile(t *testing.T) { drilltest.RunSpecs(t, "atomicfile") }
