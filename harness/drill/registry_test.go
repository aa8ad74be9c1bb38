package drill_test

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/harness/drill"
	"github.com/pgdrill/pgdrill/harness/drilltest"
	"github.com/pgdrill/pgdrill/harness/restore"
	"github.com/pgdrill/pgdrill/harness/score"
	"github.com/pgdrill/pgdrill/scenarios"
)

var _ = Describe("the strategy registry", func() {
	It("names exactly the strategies the restore package runs", func() {
		var builtin []string
		for _, s := range scenarios.StrategyInfos() {
			if s.Name == scenarios.RunbookStrategy {
				continue
			}
			builtin = append(builtin, string(s.Name))
			st, err := restore.Lookup(string(s.Name))
			Expect(err).NotTo(HaveOccurred(), "the registry's %s runs", s.Name)
			Expect(st.Name()).To(Equal(string(s.Name)))
		}
		Expect(restore.Names()).To(ConsistOf(builtin), "restore runs no strategy the registry does not describe")
	})

	It("refuses, before anything starts, a strategy override that cannot restore the scenario", func(ctx context.Context) {
		sc, err := scenarios.Lookup("wrong-id-deletion")
		Expect(err).NotTo(HaveOccurred())
		out := drill.Run(ctx, drill.Config{Scenario: sc, Restore: &scenarios.Restore{Strategy: scenarios.SoftDeleteUndo},
			Log: drilltest.DiscardLogger()}) // no provider: nothing may start
		Expect(out.Verdict).To(Equal(score.Error))
		Expect(out.Reason).To(ContainSubstring("soft-delete-undo cannot restore wrong-id-deletion"))
		Expect(out.RunID).To(BeEmpty(), "no cluster was made")
	})
})
