package reaper_test

import (
	"os"
	"testing"

	"github.com/pgdrill/pgdrill/harness/drilltest"
)

func TestReaper(t *testing.T) {
	if os.Getenv(parentEnv) != "" {
		beParent() // a process that starts a reaper and is killed, for reaper_test.go
		return
	}
	drilltest.RunSpecs(t, "reaper")
}
