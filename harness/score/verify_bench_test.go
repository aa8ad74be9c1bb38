package score_test

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/pgdrill/pgdrill/harness/cluster/local"
	"github.com/pgdrill/pgdrill/harness/dataset"
	"github.com/pgdrill/pgdrill/harness/drilltest"
	"github.com/pgdrill/pgdrill/harness/drilltest/benchshard"
	"github.com/pgdrill/pgdrill/harness/score"
)

// BenchmarkVerify verifies every tenant of the ~1 GB benchmark shard (benchshard.Start), 100
// of them taken as the affected ones, as a drill's verification does after a restore: every
// tenant table fingerprinted, the affected tenants' rows counted from their baseline, the
// directory and the schema checked. In the same run it does the raw tool's bare sequential scan
// of the same tables: psql \copy of each whole table out to /dev/null, one after another as the
// verification reads them. It reports both and their ratio (goal ≤ 2×). The raw scan goes first
// in every round, so both read from the same warm cache.
func BenchmarkVerify(b *testing.B) {
	b.StopTimer() // the fill and the baseline are not the verification
	ctx := context.Background()
	p, err := local.New(ctx, local.WithStateDir(b.TempDir()), local.WithLogger(drilltest.DiscardLogger()))
	if err != nil {
		b.Fatal(err)
	}
	c, plan := benchshard.Start(b, p)
	src := dataset.Source(c, plan.Spec.Layout, plan.Model)
	affected := plan.Tenants[:100]
	base, err := score.TakeBaseline(ctx, src, affected)
	if err != nil {
		b.Fatal(err)
	}
	defer base.Close()
	facts := score.Facts{Plan: plan, Source: src, Baseline: base, Affected: affected}
	psql := p.Binaries().Path("psql")
	dsn := c.Shards()[0].DSN()
	var ours, raw time.Duration
	for range b.N {
		start := time.Now()
		for _, t := range plan.Model.TenantTables() {
			if out, err := exec.Command(psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", dsn, "-c",
				`\copy (SELECT * FROM `+t.Name+`) TO '/dev/null'`).CombinedOutput(); err != nil {
				b.Fatalf("psql \\copy %s: %v: %s", t.Name, err, out)
			}
		}
		raw += time.Since(start)

		b.StartTimer()
		start = time.Now()
		found, err := score.Verify(ctx, facts)
		ours += time.Since(start)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if len(found.Collateral) > 0 || len(found.Affected) != len(affected) {
			b.Fatalf("an untouched shard verifies with %d collateral and %d of %d affected tenants", len(found.Collateral), len(found.Affected), len(affected))
		}
		for _, t := range found.Affected {
			if !t.Complete() {
				b.Fatalf("untouched tenant %d verifies incomplete: %+v", t.ID, t)
			}
		}
	}
	n := float64(b.N)
	b.ReportMetric(ours.Seconds()/n, "pgdrill-s")
	b.ReportMetric(raw.Seconds()/n, "raw-s")
	b.ReportMetric(ours.Seconds()/raw.Seconds(), "x-raw")
}
