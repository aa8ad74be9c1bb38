package drill_test

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/drill"
	"github.com/pgdrill/pgdrill/harness/drilltest"
	"github.com/pgdrill/pgdrill/harness/objective"
	"github.com/pgdrill/pgdrill/harness/score"
	"github.com/pgdrill/pgdrill/scenarios"
)

var _ = Describe("a blind drill", Label(drilltest.Slow), func() {
	for _, layout := range []string{"shared", "schema", "database"} {
		It("locates every victim and the true recovery targets from a ticket naming a few, inside the restore's time, and passes: "+layout, func(ctx context.Context) {
			sc := smallScenario(layout, 3)
			sc.Spec.Detection.Knowledge = scenarios.KnowledgeBlind
			out := drill.Run(ctx, drill.Config{Scenario: sc, Provider: provider, Log: drilltest.DiscardLogger()})
			expectPassed(out)
			Expect(out.Located).NotTo(BeNil())
			l := out.Located
			var truth []int64
			for _, t := range out.Incident.Affected {
				truth = append(truth, t.ID)
			}
			Expect(len(l.Reported)).To(BeNumerically("<", len(truth)), "the ticket names a few, not all")
			Expect(truth).To(ContainElements(l.Reported))
			Expect(l.Found).To(ConsistOf(truth), "every victim, the unreported ones included")
			Expect(l.Missed).To(BeEmpty())
			Expect(l.Innocent).To(BeEmpty())
			Expect(l.TargetsExact).To(BeTrue())
			var located *drill.Event
			for i, e := range out.Events {
				if e.Name == drill.StepRestore+"."+drill.StepLocate {
					located = &out.Events[i]
				}
			}
			Expect(located).NotTo(BeNil(), "locating is a phase on the timeline")
			Expect(out.Notes).To(ContainElement(ContainSubstring("blind: located")))
			Expect(out.Measures).To(HaveKeyWithValue(objective.Located, objective.Percent(100)))
			Expect(out.Measures).To(HaveKeyWithValue(objective.Target, objective.Status(true)))
			Expect(out.Measures).To(HaveKey(objective.Phase(drill.StepLocate)), "locating has its own phase measure")
		})
	}

	It("locates a cleanup script rolled out in rings, each ring its own transactions, and passes", func(ctx context.Context) {
		sc, err := scenarios.Lookup("ring-rollout")
		Expect(err).NotTo(HaveOccurred())
		sp := &sc.Spec
		sp.Cluster.Shards, sp.Dataset.Tenants, sp.Dataset.Rows = 2, 16, 6000
		sp.Incident.After, sp.Detection.Delay = scenarios.Duration(300e6), scenarios.Duration(200e6)
		sp.Detection.Knowledge = scenarios.KnowledgeBlind
		out := drill.Run(ctx, drill.Config{Scenario: sc, Provider: provider, Log: drilltest.DiscardLogger()})
		expectPassed(out)
		Expect(out.Located).NotTo(BeNil())
		Expect(out.Located.Missed).To(BeEmpty())
		Expect(out.Located.Innocent).To(BeEmpty())
	})

	// Every incident kind's built-in scenario, blind, in the layouts its own file does not use:
	// the harm of each kind looks different in the WAL of each layout (a DELETE, a DROP SCHEMA, a
	// DROP DATABASE; one transaction per shard, or per tenant database).
	DescribeTable("locates every kind of incident in every layout, and passes", func(ctx context.Context, id string, layout fixtures.Layout, want []score.Verdict) {
		sc, err := scenarios.Lookup(id)
		Expect(err).NotTo(HaveOccurred())
		sp := &sc.Spec
		sp.Cluster.Shards, sp.Cluster.Layout = 2, layout
		sp.Incident.Shard = min(sp.Incident.Shard, 1)
		sp.Dataset.Tenants, sp.Dataset.Rows = 12, 5000
		sp.Incident.After, sp.Detection.Delay = scenarios.Duration(300e6), scenarios.Duration(200e6)
		Expect(sp.Detection.Knowledge).To(Equal(scenarios.KnowledgeBlind))
		if sp.Protection.PgBackRest {
			drilltest.NeedTool("pgbackrest", "apt-get install pgbackrest", "the scenario's pgBackRest backups were not drilled")
		}
		out := drill.Run(ctx, drill.Config{Scenario: sc, Provider: provider, Log: drilltest.DiscardLogger()})
		Expect(out.Verdict).To(BeElementOf(want), "%s: %v", out.Reason, examples(out))
		Expect(out.Located).NotTo(BeNil(), out.Reason)
		Expect(out.Located.Missed).To(BeEmpty())
		Expect(out.Located.Innocent).To(BeEmpty())
		Expect(out.Located.TargetsExact).To(BeTrue(), "%+v", out.Located.Off)
	}, layoutEntries())

	It("hands a runbook the ticket alone; its `pgdrill restore` locates the harm itself, and passes", func(ctx context.Context) {
		sc := smallScenarioWith("shared", 3, "{strategy: runbook, runbook: {command: 'pgdrill restore --strategy pitr-sidecar', timeout: 2m}}", "{}")
		sc.Spec.Detection.Knowledge = scenarios.KnowledgeBlind
		out := drill.Run(ctx, drill.Config{Scenario: sc, Provider: provider, Log: drilltest.DiscardLogger()})
		expectPassed(out)
		Expect(out.Notes).To(ContainElement(ContainSubstring("blind: the runbook was handed a ticket naming")))
		Expect(out.Restore.Output).To(ContainSubstring("located the harm from the ticket"))
		Expect(out.Located).To(BeNil(), "what the runbook found is its own; the verification tells how it went")
	})
})

// layoutEntries are the built-in scenario of every incident kind in the two layouts its file does
// not name, with the verdict each must reach.
func layoutEntries() []TableEntry {
	var out []TableEntry
	pass := []score.Verdict{score.Pass}
	for _, b := range []struct {
		id   string
		want []score.Verdict
	}{
		{"wrong-id-soft-delete", pass}, {"purge-not-soft-delete", pass}, {"update-without-where", pass}, {"bad-migration", pass},
		// Writes never archived died with the disk: bounded, not zero, and at this size maybe none.
		{"shard-loss", []score.Verdict{score.Pass, score.PassWithConditions}},
		{"ring-rollout", pass},
	} {
		for _, layout := range []fixtures.Layout{fixtures.LayoutSchema, fixtures.LayoutDatabase} {
			out = append(out, Entry(b.id+", "+string(layout), b.id, layout, b.want))
		}
	}
	return out
}
