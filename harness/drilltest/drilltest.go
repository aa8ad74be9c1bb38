// Package drilltest holds what pgdrill's Ginkgo suites share: the spec labels, in one place, and
// a RunSpecs that keeps Ginkgo's timeout below `go test -timeout`, so that a suite running out
// of time still runs its DeferCleanup (and stops its Postgres servers) before go test kills it.
//
// It is the one package outside _test.go files that imports Ginkgo and Gomega.
package drilltest

import (
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
)

// Spec labels; select with -ginkgo.label-filter, e.g. '!slow'.
const (
	// Slow marks specs that take more than a few seconds (big fills, benchmarks-like restores).
	Slow = "slow"
	// Docker marks specs that need a Docker engine and the locally built Postgres image.
	Docker = "docker"
	// Root marks specs that only mean something when run as root.
	Root = "root"
)

// cleanupMargin is kept between Ginkgo's timeout and go test's, for cleanups to run.
const cleanupMargin = 45 * time.Second

// RunSpecs runs the package's Ginkgo suite through go test, with Ginkgo's timeout set below the
// go test deadline (when there is one) unless -ginkgo.timeout was given explicitly.
func RunSpecs(t *testing.T, description string) {
	t.Helper()
	gomega.RegisterFailHandler(ginkgo.Fail)
	suite, reporter := ginkgo.GinkgoConfiguration()
	if deadline, ok := t.Deadline(); ok {
		if left := time.Until(deadline) - cleanupMargin; left > 0 && left < suite.Timeout {
			suite.Timeout = left
		}
	}
	ginkgo.RunSpecs(t, description, suite, reporter)
}
