package netproxy_test

import (
	"context"
	"testing"

	. "github.com/onsi/ginkgo/v2"

	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/cluster/local"
	"github.com/pgdrill/pgdrill/harness/drilltest"
)

func TestNetproxy(t *testing.T) { drilltest.RunSpecs(t, "netproxy") }

var (
	provider *local.Provider
	// shared is a one-shard cluster the specs that only query share; each spec puts a network
	// of its own in front of it.
	shared cluster.Cluster
)

var _ = BeforeSuite(func(ctx context.Context) {
	provider = drilltest.NewLocalProvider(ctx)
	shared = drilltest.StartCluster(ctx, provider, cluster.Spec{Shards: 1})
})
