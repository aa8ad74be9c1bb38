package main_test

import (
	"os"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"

	"github.com/pgdrill/pgdrill/harness/drilltest"
)

func TestPgdrill(t *testing.T) { drilltest.RunSpecs(t, "pgdrill command") }

// binary is the pgdrill binary under test, built once per suite.
var binary string

// stateDir isolates this suite's run records from every other package's.
var stateDir string

var _ = BeforeSuite(func() {
	var err error
	binary, err = gexec.Build("github.com/pgdrill/pgdrill/cmd/pgdrill")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(gexec.CleanupBuildArtifacts)
	stateDir, err = os.MkdirTemp("", "pgdrill-cli-state-")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(os.RemoveAll, stateDir)
})
