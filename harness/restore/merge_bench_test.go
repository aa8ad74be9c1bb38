package restore_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/backup"
	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/cluster/local"
	"github.com/pgdrill/pgdrill/harness/dataset"
	"github.com/pgdrill/pgdrill/harness/drilltest"
	"github.com/pgdrill/pgdrill/harness/incident"
	"github.com/pgdrill/pgdrill/harness/restore"
)

// BenchmarkMerge measures pitr-sidecar's merge of 10 deleted tenants back into a shard of
// 300k rows, per tenant and per row, for the built-in world and for a schema of one's own with 8
// tables (scenarios/examples/tasks.sql: a reference table, tables owned through foreign keys, a
// self-referencing tree, a deferrable cycle, identity and serial keys), side by side in one run:
// the ratio merge-s/tenant of the two says what the model-driven merge costs on another shape.
func BenchmarkMerge(b *testing.B) {
	tasks := dataset.Schema{Options: fixtures.ReadOptions{Name: "tasks", TenantKey: "account_id",
		TenantKeys: map[string]string{"accounts": "id"}}}
	ddl, err := os.ReadFile("../../scenarios/examples/tasks.sql")
	if err != nil {
		b.Fatal(err)
	}
	tasks.DDL = string(ddl)
	for _, s := range []struct {
		name   string
		schema dataset.Schema
	}{{"builtin", dataset.Schema{}}, {"tasks", tasks}} {
		b.Run("schema="+s.name+"/tenants=10", func(b *testing.B) { benchMerge(b, s.schema, 10) })
	}
}

func benchMerge(b *testing.B, schema dataset.Schema, group int) {
	ctx := context.Background()
	p, err := local.New(ctx, local.WithStateDir(b.TempDir()), local.WithLogger(drilltest.DiscardLogger()))
	if err != nil {
		b.Fatal(err)
	}
	var merge time.Duration
	var moved int64
	b.StopTimer()
	for range b.N {
		c, err := p.Create(ctx, cluster.Spec{Shards: 1})
		if c != nil {
			b.Cleanup(func() { _ = c.Destroy(context.WithoutCancel(ctx)) })
		}
		if err != nil {
			b.Fatal(err)
		}
		plan, _, err := dataset.Fill(ctx, c, schema, fixtures.PlanSpec{Seed: 3, Tenants: 200, Rows: 300_000}, fixtures.FillOptions{})
		if err != nil {
			b.Fatal(err)
		}
		prot, err := backup.Protect(ctx, c, "bench")
		if err != nil {
			b.Fatal(err)
		}
		rec, err := incident.DeleteTenants(ctx, c, "bench", firstTenants(plan, group))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err := restore.PITRSidecar{}.Restore(ctx, restore.Env{Cluster: c, Protection: prot, Log: drilltest.DiscardLogger()}, rec)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		moved += res.Rows()
		for _, ph := range res.Phases {
			if ph.Name == restore.PhaseMerge {
				merge += ph.End.Sub(ph.Start)
			}
		}
		if err := c.Destroy(ctx); err != nil {
			b.Fatal(err)
		}
	}
	n := float64(b.N)
	b.ReportMetric(merge.Seconds()/n/float64(group), "merge-s/tenant")
	b.ReportMetric(float64(moved)/merge.Seconds(), "merge-rows/s")
	b.ReportMetric(float64(moved)/n, "rows")
}
