package main_test

import (
	"os"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"

	"github.com/pgdrill/pgdrill/harness/cluster/local"
	"github.com/pgdrill/pgdrill/harness/drilltest"
)

func TestPgdrill(t *testing.T) { drilltest.RunSpecs(t, "pgdrill command") }

// binary is the pgdrill binary under test, built once per suite.
var binary string

// stateDir isolates this suite's run records from every other package's.
var stateDir string

// workRoot is this suite's own work root, beside the default one: its specs run `pgdrill down
// --all`, which reaps every detached or orphaned run under the work root it is given, and must
// never reach a developer's own clusters. It is the same path on every run, so the next run of
// the suite reaps what a killed one left.
var workRoot = local.DefaultWorkRoot() + "-cli-suite"

var _ = BeforeSuite(func() {
	var err error
	binary, err = gexec.Build("github.com/pgdrill/pgdrill/cmd/pgdrill")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(gexec.CleanupBuildArtifacts)
	stateDir, err = os.MkdirTemp("", "pgdrill-cli-state-")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(os.RemoveAll, stateDir)
})
