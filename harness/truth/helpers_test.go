package truth_test

import (
	"context"

	"github.com/jackc/pgx/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/dataset"
	"github.com/pgdrill/pgdrill/harness/drilltest"
	"github.com/pgdrill/pgdrill/harness/truth"
)

// filled is a cluster loaded with a plan, and the truth's view of it.
type filled struct {
	c    cluster.Cluster
	plan *fixtures.Plan
	src  truth.Source
}

// fill starts a local cluster (torn down when the spec or container ends) and fills it.
func fill(ctx context.Context, spec fixtures.PlanSpec) filled {
	GinkgoHelper()
	c := drilltest.StartCluster(ctx, provider, cluster.Spec{Shards: spec.Shards})
	plan, _, err := dataset.Fill(ctx, c, dataset.Schema{}, spec, fixtures.FillOptions{})
	Expect(err).NotTo(HaveOccurred())
	src := dataset.Source(c, plan.Spec.Layout, plan.Model)
	return filled{c: c, plan: plan, src: src}
}

// snapshot takes a snapshot of f.
func (f filled) snapshot(ctx context.Context) *truth.Snapshot {
	GinkgoHelper()
	s, err := truth.Take(ctx, f.src)
	Expect(err).NotTo(HaveOccurred())
	return s
}

// exec runs statements where the tenant's tables live, with the search path set to them.
func (f filled) exec(ctx context.Context, tenant fixtures.Tenant, sql ...string) {
	GinkgoHelper()
	loc := f.plan.Spec.Layout.Locate(tenant.ID)
	conn, err := pgx.Connect(ctx, f.c.Shards()[tenant.Shard].DSNFor(loc.Database))
	Expect(err).NotTo(HaveOccurred())
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "SET search_path TO "+pgx.Identifier{loc.Schema}.Sanitize())
	Expect(err).NotTo(HaveOccurred())
	for _, s := range sql {
		_, err := conn.Exec(ctx, s)
		Expect(err).NotTo(HaveOccurred(), s)
	}
}

// homes is the shard of every tenant, as the plan placed it.
func (f filled) homes() map[int64]int {
	out := map[int64]int{}
	for _, t := range f.plan.Tenants {
		out[t.ID] = t.Shard
	}
	return out
}

// twoOnOneShard returns two tenants that share a shard.
func (f filled) twoOnOneShard() (fixtures.Tenant, fixtures.Tenant) {
	GinkgoHelper()
	for s := range f.plan.Spec.Shards {
		if on := f.plan.OnShard(s); len(on) >= 2 {
			return on[0], on[1]
		}
	}
	Fail("no shard holds two tenants")
	return fixtures.Tenant{}, fixtures.Tenant{}
}
