package drill_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"

	"github.com/pgdrill/pgdrill/harness/cluster/local"
	"github.com/pgdrill/pgdrill/harness/drilltest"
)

func TestDrill(t *testing.T) { drilltest.RunSpecs(t, "drill") }

var provider *local.Provider

// pgdrillBin is the pgdrill binary the sabotage runbooks call.
var pgdrillBin string

var _ = BeforeSuite(func(ctx context.Context) {
	provider = drilltest.NewLocalProvider(ctx)
	var err error
	pgdrillBin, err = gexec.Build("github.com/pgdrill/pgdrill/cmd/pgdrill")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(gexec.CleanupBuildArtifacts)
	// A runbook's `pgdrill restore` (the restorer-crash scenario's) is this pgdrill, attached to
	// the suite's runs, as `pgdrill run` makes it (Host.RunbookEnv).
	for name, value := range map[string]string{"PATH": filepath.Dir(pgdrillBin) + string(os.PathListSeparator) + os.Getenv("PATH"),
		"PGDRILL_STATE_DIR": provider.Store().Dir()} {
		DeferCleanup(os.Setenv, name, os.Getenv(name))
		Expect(os.Setenv(name, value)).To(Succeed())
	}
})
