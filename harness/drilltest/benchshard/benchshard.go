// Package benchshard starts the one-shard cluster the benchmarks against the raw tools share. It
// is a package of its own, apart from drilltest, because it fills the shard (fixtures, dataset),
// and the fixtures' own specs use drilltest.
package benchshard

import (
	"context"
	"testing"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/cluster/local"
	"github.com/pgdrill/pgdrill/harness/dataset"
)

// Rows sizes the benchmarks' shard: about 1 GB of table and index data, the size their targets
// (restore against the raw tools, verification against a scan) are set for.
const Rows = 3_000_000

// Start starts a one-shard cluster on p, torn down when the benchmark ends, and fills it with
// Rows rows of 400 tenants of the built-in schema (seed 3): the shard every benchmark
// against the raw tools shares, so that their figures are of the same data.
func Start(tb testing.TB, p *local.Provider) (cluster.Cluster, *fixtures.Plan) {
	tb.Helper()
	ctx := context.Background()
	c, err := p.Create(ctx, cluster.Spec{Shards: 1})
	if c != nil {
		tb.Cleanup(func() { _ = c.Destroy(context.WithoutCancel(ctx)) })
	}
	if err != nil {
		tb.Fatal(err)
	}
	plan, _, err := dataset.Fill(ctx, c, dataset.Schema{}, fixtures.PlanSpec{Seed: 3, Tenants: 400, Rows: Rows}, fixtures.FillOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	return c, plan
}
