package drill_test

import (
	"context"
	"syscall"
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
func BenchmarkDefaultDrill(b *testing.B) { benchScenario(b, "wrong-id-deletion") }

// BenchmarkAtlassian2022 runs the atlassian-2022 scenario at its full size (8 shards, 3,000
// tenants, 10M rows, 883 victims found blind) and reports the same figures (goal: its restore
// step under 2 minutes), with the peak resident memory of the process.
func BenchmarkAtlassian2022(b *testing.B) { benchScenario(b, "atlassian-2022") }

// benchScenario runs a built-in scenario end to end, which must pass, and reports its wall time,
// each step's, and the process's peak resident memory.
func benchScenario(b *testing.B, id string) {
	sc, err := scenarios.Lookup(id)
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
			b.Fatalf("%s: %s: %s", id, out.Verdict, out.Reason)
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
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		b.ReportMetric(float64(ru.Maxrss)/1024, "peak-rss-MB") // Linux reports KiB
	}
}
