package container_test

import (
	"context"
	"os"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/harness/cluster/container"
	"github.com/pgdrill/pgdrill/harness/drilltest"
	"github.com/pgdrill/pgdrill/harness/image"
	"github.com/pgdrill/pgdrill/harness/runstate"
)

func TestContainer(t *testing.T) { drilltest.RunSpecs(t, "container") }

var (
	provider *container.Provider
	store    *runstate.Store
)

var _ = BeforeSuite(func() {
	dir, err := os.MkdirTemp("", "pgdrill-spec-state-")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(os.RemoveAll, dir)
	store, err = runstate.Open(dir)
	Expect(err).NotTo(HaveOccurred())
	provider = container.New(container.WithLogger(drilltest.DiscardLogger()), container.WithStore(store))
})

var _ = BeforeEach(func(ctx context.Context) {
	drilltest.NeedImage(ctx, image.DefaultTag, "pgdrill image build", "the container provider was not run")
})
