package drill_test

import (
	"context"
	"testing"
	"time"

	"github.com/pgdrill/pgdrill/harness/cluster/local"
	"github.com/pgdrill/pgdrill/harness/drill"
	"github.com/pgdrill/pgdrill/harness/drilltest"
	"github.com/pgdrill/pgdrill/harness/score"
	"github.com/pgdrill/pgdrill/scenarios"
)

// BenchmarkDefaultDrill runs the default drill (`pgdrill run`: wrong-id-deletion, 4 shards, 200
// tenants, 1M rows, pitr-sidecar) end to end and reports its wall time and each step's (goal:
// ≤ 30 s on a 2-core machine). The incident delay and the detection delay are the scenario's
// (they are waits, part of the drill by design); "work-s" is the rest.
func BenchmarkDefaultDrill(b *testing.B) {
	sc, err := scenarios.Lookup("wrong-id-deletion")
	if err != nil {
		b.Fatal(err)
	}
	p, err := local.New(b.Context(), local.WithStateDir(b.TempDir()), local.WithLogger(drilltest.DiscardLogger()))
	if err != nil {
		b.Fatal(err)
	}
	steps := map[string]time.Duration{}
	var total time.Duration
	for b.Loop() {
		out := drill.Run(context.Background(), drill.Config{Scenario: sc, Provider: p, Log: drilltest.DiscardLogger()})
		if out.Verdict != score.Pass && out.Verdict != score.PassWithConditions {
			b.Fatalf("default drill: %s: %s", out.Verdict, out.Reason)
		}
		total += out.Finished.Sub(out.Started)
		for _, e := range out.Events {
			if e.Shard == -1 {
				steps[e.Name] += e.End - e.Start
			}
		}
	}
	n := float64(b.N)
	b.ReportMetric(total.Seconds()/n, "drill-s")
	waits := sc.Spec.Incident.After.Std() + steps[drill.StepDetect]/time.Duration(b.N)
	b.ReportMetric((total.Seconds()/n)-waits.Seconds(), "work-s")
	for _, name := range []string{drill.StepProvision, drill.StepFill, drill.StepProtect, drill.StepBaseline,
		drill.StepIncident, drill.StepDetect, drill.StepRestore, drill.StepVerify, drill.StepTeardown} {
		b.ReportMetric(steps[name].Seconds()/n, name+"-s")
	}
}
