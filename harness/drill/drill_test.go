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

// smallScenario is a quick wrong-id-deletion drill restored by pitr-sidecar.
func smallScenario(layout string, seed int) *scenarios.Scenario {
	GinkgoHelper()
	return smallScenarioWith(layout, seed, "{strategy: pitr-sidecar}", "{}")
}

// smallScenarioWith is smallScenario restored as restore says (YAML), protected as protection says.
func smallScenarioWith(layout string, seed int, restore, protection string) *scenarios.Scenario {
	GinkgoHelper()
	sc, err := scenarios.Parse("small.yaml", []byte(fmt.Sprintf(`apiVersion: pgdrill.dev/v1alpha1
kind: Scenario
metadata:
  id: small-wrong-id
  title: A small wrong-id deletion
spec:
  hypothesis: The sidecar brings every deleted tenant back.
  seed: %d
  cluster: {shards: 2, layout: %s}
  dataset: {tenants: 16, rows: 8000}
  workload: {rate: 200}
  protection: %s
  incident: {kind: wrong-id-deletion, after: 300ms, fraction: 0.25}
  detection: {delay: 200ms}
  restore: %s
  objectives: [rto<=2m, rpo<=1s, completeness>=100%%, collateral==0, lost_rows==0, integrity==ok, backups==verified]
`, seed, layout, protection, restore)))
	Expect(err).NotTo(HaveOccurred())
	return sc
}

var _ = Describe("a drill", func() {
	It("runs wrong-id-deletion end to end, restores every victim and passes", func(ctx context.Context) {
		out := drill.Run(ctx, drill.Config{Scenario: smallScenario("shared", 3), Provider: provider, Log: drilltest.DiscardLogger()})
		Expect(out.Verdict).To(BeElementOf(score.Pass, score.PassWithConditions), out.Reason)
		Expect(out.Incident.Affected).To(HaveLen(4))
		Expect(out.Affected).To(HaveLen(4))
		for _, t := range out.Affected {
			Expect(t.Complete()).To(BeTrue(), "%+v", t)
			Expect(t.Expected).To(BeNumerically(">", 0))
		}
		Expect(out.Collateral).To(BeEmpty())
		Expect(out.Writes).To(BeNumerically(">", 50))
		Expect(out.Measures).To(HaveKey(objective.RTO))
		Expect(out.Measures[objective.RPO].Number).To(BeZero())
		Expect(out.Measures[objective.Completeness].Number).To(Equal(100.0))
		for _, res := range out.Results {
			Expect(res.Passed).To(BeTrue(), res.Reason)
		}
		names := map[string]bool{}
		for _, e := range out.Events {
			names[e.Name] = true
			Expect(e.End).To(BeNumerically(">=", e.Start))
		}
		for _, step := range []string{drill.StepProvision, drill.StepFill, drill.StepProtect, drill.StepIncident,
			drill.StepDetect, drill.StepRestore, "restore.replay", "restore.merge", drill.StepVerify, drill.StepTeardown} {
			Expect(names).To(HaveKey(step))
		}
	})

	It("chooses the same victims for the same seed and others for another", func(ctx context.Context) {
		a := drill.Run(ctx, drill.Config{Scenario: smallScenario("shared", 8), Provider: provider, Log: drilltest.DiscardLogger()})
		b := drill.Run(ctx, drill.Config{Scenario: smallScenario("shared", 8), Provider: provider, Log: drilltest.DiscardLogger()})
		c := drill.Run(ctx, drill.Config{Scenario: smallScenario("shared", 9), Provider: provider, Log: drilltest.DiscardLogger()})
		for _, o := range []*drill.Outcome{a, b, c} {
			Expect(o.Incident).NotTo(BeNil(), "the drill got to its incident: %s %s", o.Verdict, o.Reason)
		}
		Expect(a.Incident.Affected).To(Equal(b.Incident.Affected))
		Expect(a.Incident.Affected).NotTo(Equal(c.Incident.Affected))
	})

	It("is an ERROR, not a FAIL, when the harness cannot do its part", func(ctx context.Context) {
		sc := smallScenario("shared", 1)
		sc.Spec.Incident.Kind = "meteor-strike" // the harness cannot inject what it does not know
		out := drill.Run(ctx, drill.Config{Scenario: sc, Provider: provider, Log: drilltest.DiscardLogger()})
		Expect(out.Verdict).To(Equal(score.Error))
		Expect(out.Reason).To(ContainSubstring("unknown incident kind"))
	})

	It("is ABORTED when cancelled, and tears everything down", func(ctx context.Context) {
		cctx, cancel := context.WithCancel(ctx)
		sc := smallScenario("shared", 1)
		sc.Spec.Incident.After = scenarios.Duration(60e9)
		done := make(chan *drill.Outcome)
		go func() {
			done <- drill.Run(cctx, drill.Config{Scenario: sc, Provider: provider, Log: drilltest.DiscardLogger(),
				OnStep: func(step string) {
					if step == drill.StepWorkload {
						cancel()
					}
				}})
		}()
		var out *drill.Outcome
		Eventually(done, "60s").Should(Receive(&out))
		Expect(out.Verdict).To(Equal(score.Aborted))
		recs, err := provider.Store().List()
		Expect(err).NotTo(HaveOccurred())
		Expect(recs).To(BeEmpty(), "nothing left running")
	})
})

var _ = Describe("a ring rollout", func() {
	rollout := func(canaryGuard int64) *scenarios.Scenario {
		GinkgoHelper()
		sc, err := scenarios.Parse("rings.yaml", []byte(fmt.Sprintf(`apiVersion: pgdrill.dev/v1alpha1
kind: Scenario
metadata: {id: rings, title: Rings}
spec:
  hypothesis: The canary guard contains the damage.
  seed: 5
  cluster: {shards: 2}
  dataset: {tenants: 20, rows: 10000}
  workload: {rate: 100}
  incident:
    kind: ring-rollout
    after: 200ms
    fraction: 0.5
    rings:
      - {name: canary, fraction: 0.1, guard: {maxRows: %d}}
      - {name: early, fraction: 0.3, guard: {maxRows: 100000000}}
      - {name: rest, fraction: 0.6}
  detection: {delay: 100ms}
  objectives: [completeness>=100%%, collateral==0]
`, canaryGuard)))
		Expect(err).NotTo(HaveOccurred())
		return sc
	}

	It("halts at the canary ring when its guard sees abnormal damage, and shows the blast radius avoided", func(ctx context.Context) {
		out := drill.Run(ctx, drill.Config{Scenario: rollout(1), Provider: provider, Log: drilltest.DiscardLogger()})
		Expect(out.Verdict).To(BeElementOf(score.Pass, score.PassWithConditions), out.Reason)
		Expect(out.Rings).To(HaveLen(3))
		Expect(out.Rings[0].Halted).To(BeTrue())
		Expect(out.Rings[1].Skipped).To(BeTrue())
		Expect(out.Rings[2].Skipped).To(BeTrue())
		Expect(out.Incident.Affected).To(HaveLen(len(out.Rings[0].Tenants)))
		Expect(out.BlastRadius.TargetedTenants).To(Equal(10))
		Expect(out.BlastRadius.HarmedTenants).To(Equal(1))
		Expect(out.BlastRadius.HarmedRows).To(BeNumerically("<", out.BlastRadius.TargetedRows))
		Expect(out.Affected).To(HaveLen(1), "only harmed tenants are scored as affected")
	})

	It("runs every ring when no guard trips", func(ctx context.Context) {
		out := drill.Run(ctx, drill.Config{Scenario: rollout(100_000_000), Provider: provider, Log: drilltest.DiscardLogger()})
		Expect(out.Verdict).To(BeElementOf(score.Pass, score.PassWithConditions), out.Reason)
		for _, r := range out.Rings {
			Expect(r.Halted || r.Skipped).To(BeFalse())
		}
		Expect(out.BlastRadius.HarmedTenants).To(Equal(10))
		// The plan sizes the targets; the workload's inserts and deletes move the count a little.
		Expect(out.BlastRadius.HarmedRows).To(BeNumerically("~", out.BlastRadius.TargetedRows, out.BlastRadius.TargetedRows/20))
	})
})
