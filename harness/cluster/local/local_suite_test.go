package local_test

import (
	"context"
	"os"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/harness/cluster/local"
	"github.com/pgdrill/pgdrill/harness/drilltest"
)

func TestLocal(t *testing.T) { drilltest.RunSpecs(t, "local provider") }

// provider is shared by the suite; each suite has its own state dir so that nothing another
// package runs concurrently is listed or reaped here.
var provider *local.Provider

var _ = BeforeSuite(func(ctx context.Context) {
	stateDir, err := os.MkdirTemp("", "pgdrill-local-state-")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(os.RemoveAll, stateDir)
	provider, err = local.New(ctx, local.WithStateDir(stateDir), local.WithLogger(discardLogger()))
	Expect(err).NotTo(HaveOccurred())
})
