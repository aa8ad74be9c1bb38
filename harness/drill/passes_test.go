package drill_test

import (
	"context"
	"fmt"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/harness/drill"
	"github.com/pgdrill/pgdrill/harness/drilltest"
	"github.com/pgdrill/pgdrill/harness/score"
	"github.com/pgdrill/pgdrill/scenarios"
)

// The other half of keeping the scorer honest: correct restores, by every strategy that can
// restore the incident and by a runbook a team wrote with the Postgres tools alone, PASS across
// seeds and layouts. A scorer that fails them cries wolf, and nobody reads its FAILs.

// expectPassed asserts a PASS: PASS_WITH_CONDITIONS only where the one condition is a write
// whose outcome the harness lost (a shard's connections dropped by DROP DATABASE, say) and the
// row holds one of its outcomes.
func expectPassed(out *drill.Outcome) {
	GinkgoHelper()
	if out.Verdict == score.PassWithConditions {
		Expect(out.Reason).To(MatchRegexp(`^every objective was met, with conditions: \d+ row\(s\) a write of unknown outcome touched hold one of the states it allows$`))
		return
	}
	Expect(out.Verdict).To(Equal(score.Pass), "%s\n%s", out.Reason, runbookOutput(out))
}

func runWith(ctx context.Context, sc *scenarios.Scenario) *drill.Outcome {
	GinkgoHelper()
	return drill.Run(ctx, drill.Config{Scenario: sc, Provider: provider, Log: drilltest.DiscardLogger()})
}

var _ = Describe("the scorer, against correct restores", Label(drilltest.Slow), func() {
	layouts := []string{"shared", "schema", "database"}

	Describe("pitr-sidecar passes", func() {
		// Ten seeds on shared tables, the hard case, and four more on each other layout.
		seeds := map[string][]int{"shared": {101, 102, 103, 104, 105, 106, 107, 108, 109, 110},
			"schema": {111, 112, 113, 114}, "database": {115, 116, 117, 118}}
		for _, layout := range layouts {
			for _, seed := range seeds[layout] {
				It(fmt.Sprintf("in the %s layout with seed %d", layout, seed), func(ctx context.Context) {
					expectPassed(runWith(ctx, smallScenario(layout, seed)))
				})
			}
		}
	})

	Describe("a runbook written with psql, pg_ctl and pg_dump from the incident file alone passes", func() {
		script, err := filepath.Abs(filepath.Join("testdata", "psql-runbook.sh"))
		if err != nil {
			panic(err)
		}
		// A tenant database comes back from a sidecar of its own (one harm per dropped database):
		// one seed of that layout is enough.
		seeds := map[string][]int{"shared": {201, 202}, "schema": {203, 204}, "database": {205}}
		for _, layout := range layouts {
			for _, seed := range seeds[layout] {
				It(fmt.Sprintf("in the %s layout with seed %d", layout, seed), func(ctx context.Context) {
					sc := smallScenarioWith(layout, seed, fmt.Sprintf("{strategy: runbook, runbook: {command: 'sh %s', timeout: 2m}}", script), "{}")
					out := runWith(ctx, sc)
					expectPassed(out)
					Expect(out.Restore.Output).To(ContainSubstring("is back"), "the runbook restored the tenants itself")
				})
			}
		}
	})

	Describe("delayed-standby passes", func() {
		// Not the database layout: a standby applies DROP DATABASE as soon as it reads it (only
		// commits are delayed), which the README's choice of strategy says.
		for _, layout := range layouts[:2] {
			for _, seed := range []int{301, 302} {
				It(fmt.Sprintf("in the %s layout with seed %d", layout, seed), func(ctx context.Context) {
					expectPassed(runWith(ctx, smallScenarioWith(layout, seed, "{strategy: delayed-standby}", "{standbyApplyDelay: 1m}")))
				})
			}
		}
	})

	It("pgbackrest-sidecar passes", func(ctx context.Context) {
		drilltest.NeedTool("pgbackrest", "apt-get install pgbackrest", "no drill restored with pgBackRest")
		expectPassed(runWith(ctx, smallScenarioWith("shared", 401, "{strategy: pgbackrest-sidecar}", "{pgbackrest: true}")))
	})
})
