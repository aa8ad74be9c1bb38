package local_test

import (
	"context"
	"os"
	"testing"

	. "github.com/onsi/ginkgo/v2"

	"github.com/pgdrill/pgdrill/harness/cluster/local"
	"github.com/pgdrill/pgdrill/harness/drilltest"
)

func TestLocal(t *testing.T) {
	if os.Getenv(ownClusterEnv) != "" {
		ownCluster(t) // a pgdrill to kill, for the specs of findruns_test.go
		return
	}
	drilltest.RunSpecs(t, "local provider")
}

var provider *local.Provider

var _ = BeforeSuite(func(ctx context.Context) {
	provider = drilltest.NewLocalProvider(ctx)
	fleet = drilltest.StartFleet(ctx, provider, 4)
	fleetBaseline = fleet.Databases(ctx)
})
