// Package dataset connects a cluster to the synthetic SaaS of package fixtures: it fills a
// cluster with a plan and points the truth at it. fixtures takes plain connection strings so it
// stays free of the harness; this is where the two meet.
package dataset

import (
	"context"
	"fmt"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/truth"
)

// Target is the fill target of a cluster. Tenant databases (database layout) are created through
// the shard, so they carry the run's safety marker.
func Target(c cluster.Cluster) fixtures.Target {
	t := fixtures.Target{CatalogDSN: c.Catalog().DSN()}
	for i, s := range c.Shards() {
		t.Shards = append(t.Shards, fixtures.ShardTarget{Index: i, DSN: s.DSN(), CreateDatabase: s.CreateDatabase})
	}
	return t
}

// Source is where the truth reads the cluster's tenants, whose tables have m's shape.
func Source(c cluster.Cluster, layout fixtures.Layout, m *fixtures.Model) truth.Source {
	src := truth.Source{Layout: layout, Model: m, Catalog: c.Catalog().DSN()}
	for _, s := range c.Shards() {
		src.Shards = append(src.Shards, s.DSN())
	}
	return src
}

// Fill plans spec of the schema's shape for the cluster's shards (see Plan) and loads it.
func Fill(ctx context.Context, c cluster.Cluster, s Schema, spec fixtures.PlanSpec, opts fixtures.FillOptions) (*fixtures.Plan, fixtures.FillResult, error) {
	plan, err := Plan(ctx, c, s, spec)
	if err != nil {
		return nil, fixtures.FillResult{}, err
	}
	res, err := fixtures.Fill(ctx, plan, Target(c), opts)
	if err != nil {
		return plan, res, fmt.Errorf("fill cluster %s: %w", c.RunID(), err)
	}
	return plan, res, nil
}
