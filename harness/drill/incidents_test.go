package drill_test

import (
	"context"
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/harness/drill"
	"github.com/pgdrill/pgdrill/harness/drilltest"
	"github.com/pgdrill/pgdrill/harness/objective"
	"github.com/pgdrill/pgdrill/harness/score"
	"github.com/pgdrill/pgdrill/scenarios"
)

// incidentScenario is a small drill of one incident kind; incident holds its YAML parameters.
func incidentScenario(id, incident, restore, protection string) *scenarios.Scenario {
	GinkgoHelper()
	sc, err := scenarios.Parse(id+".yaml", []byte(fmt.Sprintf(`apiVersion: pgdrill.dev/v1alpha1
kind: Scenario
metadata: {id: %s, title: A small drill}
spec:
  hypothesis: The restore brings the harmed data back.
  seed: 4
  cluster: {shards: 2}
  dataset: {tenants: 12, rows: 6000}
  workload: {rate: 200}
  protection: {%s}
  incident: {%s, after: 400ms}
  detection: {delay: 300ms}
  restore: {strategy: %s}
  objectives: [rto<=2m, completeness>=100%%, collateral==0]
`, id, protection, incident, restore)))
	Expect(err).NotTo(HaveOccurred())
	return sc
}

var _ = Describe("the column and shard incidents", func() {
	It("loses a shard, rebuilds it from its archive at the same address, and scores the writes that were never archived as lost",
		func(ctx context.Context) {
			out := drill.Run(ctx, drill.Config{Scenario: incidentScenario("lose", "kind: shard-loss, shard: 1", "full-shard-pitr", ""),
				Provider: provider, Log: drilltest.DiscardLogger()})
			Expect(out.Incident).NotTo(BeNil(), out.Reason)
			By("recording every tenant of the shard as affected, with no recovery target")
			Expect(out.Incident.Harms).To(HaveLen(1))
			h := out.Incident.Harms[0]
			Expect(h.ServerLost).To(BeTrue())
			Expect(h.Shard).To(Equal(1))
			Expect(h.RecoverTo.XID+h.RecoverTo.LSN).To(BeEmpty(), "everything archived")
			Expect(h.Rows).To(BeNumerically(">", 0))
			Expect(out.Incident.Affected).NotTo(BeEmpty())
			for _, t := range out.Incident.Affected {
				Expect(t.Shard).To(Equal(1))
			}
			Expect(out.Affected).To(HaveLen(len(out.Incident.Affected)))
			By("rebuilding the shard and leaving the other shard's tenants untouched")
			Expect(out.Restore).NotTo(BeNil())
			Expect(out.Restore.Phases).To(ContainElement(HaveField("Name", "swap")))
			Expect(out.Restore.Phases).NotTo(ContainElement(HaveField("Name", "archive")), "a lost server has nothing more to archive")
			Expect(out.Collateral).To(BeEmpty())
			for _, c := range out.Integrity {
				Expect(c.Passed).To(BeTrue(), c.Detail)
			}
			By("scoring the acknowledged writes whose WAL died with the shard as lost: an honest FAIL with RPO > 0")
			var lost int64
			for _, t := range out.Affected {
				lost += t.Lost + t.Wrong + t.Resurrected
			}
			Expect(lost).To(BeNumerically(">", 0))
			Expect(out.Verdict).To(Equal(score.Fail), out.Reason)
			Expect(out.Measures[objective.RPO].Number).To(BeNumerically(">", 0))
			GinkgoWriter.Printf("shard-loss: %d tenants, %d rows lost, RPO %v, RTO %v\n", len(out.Affected), lost,
				out.Measures[objective.RPO], out.Measures[objective.RTO])
		})

	It("repairs the overwritten column of one tenant from its export, keeping its later writes, and passes",
		func(ctx context.Context) {
			out := drill.Run(ctx, drill.Config{Scenario: incidentScenario("overwrite",
				"kind: update-without-where, tenants: 1, table: issues, column: summary", "logical-export", "logicalExportInterval: 1m"),
				Provider: provider, Log: drilltest.DiscardLogger()})
			Expect(out.Incident).NotTo(BeNil(), out.Reason)
			Expect(out.Incident.Affected).To(HaveLen(1))
			h := out.Incident.Harms[0]
			Expect(h.Column).NotTo(BeNil())
			Expect(h.Column.Before).To(HaveLen(int(h.Rows)))
			Expect(h.Rows).To(BeNumerically(">", 0))
			Expect(out.Restore.Tenants).To(HaveLen(1))
			Expect(out.Restore.Tenants[0].RowsWritten).To(BeNumerically(">", 0))
			Expect(out.Restore.Tenants[0].RowsWritten).To(BeNumerically("<=", h.Rows))
			Expect(out.Verdict).To(BeElementOf(score.Pass, score.PassWithConditions), out.Reason)
			Expect(out.Affected[0].Complete()).To(BeTrue(), "%+v", out.Affected[0])
			Expect(out.Collateral).To(BeEmpty())
			Expect(out.Measures[objective.RPO].Number).To(BeZero())
			GinkgoWriter.Printf("update-without-where: %d rows overwritten, %d repaired, RTO %v\n", h.Rows,
				out.Restore.Tenants[0].RowsWritten, out.Measures[objective.RTO])
		})

	DescribeTable("a bad migration on every shard, repaired column by column from a sidecar",
		func(ctx context.Context, migration string) {
			out := drill.Run(ctx, drill.Config{Scenario: incidentScenario("migration",
				"kind: bad-migration, migration: "+migration+", table: issues, column: description", "pitr-sidecar", ""),
				Provider: provider, Log: drilltest.DiscardLogger()})
			Expect(out.Incident).NotTo(BeNil(), out.Reason)
			Expect(out.Incident.Harms).To(HaveLen(2), "one DDL per shard")
			Expect(out.Affected).To(HaveLen(12), "every tenant")
			for _, t := range out.Affected {
				Expect(t.Complete()).To(BeTrue(), "%+v", t)
			}
			Expect(out.Verdict).To(BeElementOf(score.Pass, score.PassWithConditions), out.Reason)
			Expect(out.Collateral).To(BeEmpty())
			for _, t := range out.Affected {
				Expect(t.Complete()).To(BeTrue(), "%+v", t)
			}
		},
		Entry("drop-column", "drop-column"),
		Entry("rewrite-column", "rewrite-column"),
	)
})

// builtinVerdicts is the verdict each built-in scenario must reach at a small size: a spec for
// every one, written down, so that a scenario that starts failing (or passing with conditions
// where it passed) is a red test, not a log line.
var builtinVerdicts = []struct {
	id   string
	want score.Verdict
	// unknownOK lets a PASS be PASS_WITH_CONDITIONS where the one condition is a write whose
	// outcome a fault lost (a cut network closes the workload's connections too).
	unknownOK bool
}{
	{id: "atlassian-2022", want: score.Pass}, // at full size under make bench (BenchmarkAtlassian2022)
	{id: "bad-migration", want: score.Pass},
	{id: "corrupt-backup", want: score.Fail},                      // the backup check finds the corrupt file before the restore
	{id: "missing-wal", want: score.Fail},                         // the backup check names the missing segment; nothing is merged
	{id: "restore-under-fire", want: score.Pass, unknownOK: true}, // a killed sidecar and a cut network, both survived
	{id: "restorer-crash", want: score.Pass},                      // the runbook killed mid-merge and run again; nothing twice
	{id: "purge-not-soft-delete", want: score.Pass},
	{id: "ring-rollout", want: score.Pass},
	{id: "shard-loss", want: score.PassWithConditions}, // writes never archived died with the disk: bounded, not zero
	{id: "update-without-where", want: score.Pass},
	{id: "wrong-id-deletion", want: score.Pass},
	{id: "wrong-id-soft-delete", want: score.Pass},
}

// builtinEntries are builtinVerdicts as table entries, in the order written.
func builtinEntries() []TableEntry {
	var out []TableEntry
	for _, b := range builtinVerdicts {
		out = append(out, Entry(b.id, b.id, b.want, b.unknownOK))
	}
	return out
}

var _ = Describe("every built-in scenario", Label(drilltest.Slow), func() {
	It("has its expected verdict written down", func() {
		var listed []string
		for _, b := range builtinVerdicts {
			listed = append(listed, b.id)
		}
		var ids []string
		for _, sc := range scenarios.Builtin() {
			ids = append(ids, sc.Metadata.ID)
		}
		Expect(listed).To(ConsistOf(ids))
	})

	DescribeTable("runs end to end at a small size and reaches its verdict", func(ctx context.Context, id string, want score.Verdict, unknownOK bool) {
		sc, err := scenarios.Lookup(id)
		Expect(err).NotTo(HaveOccurred())
		sp := &sc.Spec
		sp.Cluster.Shards = min(sp.Cluster.Shards, 2)
		sp.Incident.Shard = min(sp.Incident.Shard, sp.Cluster.Shards-1)
		sp.Dataset.Tenants, sp.Dataset.Rows = 16, 6000
		sp.Incident.After = scenarios.Duration(300e6)
		sp.Detection.Delay = scenarios.Duration(200e6)
		if sp.Protection.PgBackRest {
			drilltest.NeedTool("pgbackrest", "apt-get install pgbackrest", "the scenario's pgBackRest backups were not drilled")
		}
		out := drill.Run(ctx, drill.Config{Scenario: sc, Provider: provider, Log: drilltest.DiscardLogger()})
		GinkgoWriter.Printf("%s with %s: %s (%s)\n", sc.Metadata.ID, out.Strategy, out.Verdict, out.Reason)
		if unknownOK && want == score.Pass {
			expectPassed(out)
		} else {
			Expect(out.Verdict).To(Equal(want), "%s: %v", out.Reason, examples(out))
		}
		Expect(out.Incident).NotTo(BeNil())
		Expect(out.Strategy).To(Equal(string(sc.Spec.Restore.Strategy)))
		Expect(out.Knowledge).To(Equal(scenarios.KnowledgeBlind), "built-in drills are blind: handed a ticket, not the harm")
		if l := out.Located; l != nil { // a built-in strategy located the harm itself
			Expect(l.Missed).To(BeEmpty(), "every victim found")
			Expect(l.Innocent).To(BeEmpty(), "no bystander taken for one")
			Expect(l.TargetsExact).To(BeTrue(), "every recovery target the true one")
		} else {
			Expect(sc.Spec.Restore.Strategy == scenarios.RunbookStrategy || out.Restore == nil).To(BeTrue(),
				"a built-in strategy that restored located the harm itself: %s", out.Reason)
		}
	}, builtinEntries())
})
