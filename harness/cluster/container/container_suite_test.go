package container_test

import (
	"testing"

	"github.com/pgdrill/pgdrill/harness/drilltest"
)

func TestContainer(t *testing.T) { drilltest.RunSpecs(t, "container") }
