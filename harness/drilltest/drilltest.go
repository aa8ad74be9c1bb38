// Package drilltest holds what pgdrill's Ginkgo suites share: the spec labels, in one place; a
// RunSpecs that keeps Ginkgo's timeout below `go test -timeout`, so that a suite running out of
// time still runs its DeferCleanup (and stops its Postgres servers) before go test kills it; and
// the rules that keep a spec from passing without testing anything: NeedTool (a missing tool
// fails under CI and is reported otherwise) and ExpectGolden (an updated golden file is never a
// green run).
//
// It is the one package outside _test.go files that imports Ginkgo and Gomega.
package drilltest

import (
	"fmt"
	"os"
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
// go test deadline (when there is one) unless -ginkgo.timeout was given explicitly. Its last line
// of output counts the specs NeedTool skipped, by reason ("not run, because: ..."); go test shows
// it with -v, or when run in the package's directory without package arguments.
func RunSpecs(t *testing.T, description string) {
	t.Helper()
	gomega.RegisterFailHandler(ginkgo.Fail)
	suite, reporter := ginkgo.GinkgoConfiguration()
	if deadline, ok := t.Deadline(); ok {
		if left := time.Until(deadline) - cleanupMargin; left > 0 && left < suite.Timeout {
			suite.Timeout = left
		}
	}
	// A ReportAfterSuite sees every spec's report, from every process of a parallel run; the
	// line is printed once Ginkgo's own summary is out, so that it is the last.
	var notRun string
	ginkgo.ReportAfterSuite("what NeedTool did not run", func(r ginkgo.Report) { notRun = notRunLine(r) })
	ginkgo.RunSpecs(t, description, suite, reporter)
	if notRun != "" {
		fmt.Println(notRun)
		if err := appendNotRun(description, notRun); err != nil {
			t.Errorf("keep the not-run line: %v", err)
		}
	}
}

// NotRunFileEnv names a file every suite appends its "not run, because" line to: `go test ./...`
// shows no output of a package that passed, so `make test` prints the file at the end instead.
const NotRunFileEnv = "PGDRILL_NOT_RUN_FILE"

// appendNotRun appends a suite's not-run line to the file NotRunFileEnv names, if any. Suites of
// packages tested in parallel append at once; each line is one write to a file opened for
// appending, which the kernel keeps whole.
func appendNotRun(suite, line string) error {
	path := os.Getenv(NotRunFileEnv)
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(f, "%s (%s suite)\n", line, suite); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
