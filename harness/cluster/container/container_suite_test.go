package container_test

import (
	"context"
	"testing"

	. "github.com/onsi/ginkgo/v2"

	"github.com/pgdrill/pgdrill/harness/cluster/container"
	"github.com/pgdrill/pgdrill/harness/drilltest"
	"github.com/pgdrill/pgdrill/harness/image"
)

func TestContainer(t *testing.T) { drilltest.RunSpecs(t, "container") }

var provider *container.Provider

var _ = BeforeEach(func(ctx context.Context) {
	drilltest.NeedImage(ctx, image.DefaultTag, "pgdrill image build", "the container provider was not run")
	if provider == nil {
		provider = container.New(container.WithLogger(drilltest.DiscardLogger()))
	}
})
