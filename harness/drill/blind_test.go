package drill_test

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/harness/drill"
	"github.com/pgdrill/pgdrill/harness/drilltest"
	"github.com/pgdrill/pgdrill/harness/objective"
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
