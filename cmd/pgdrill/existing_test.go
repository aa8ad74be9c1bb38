package main_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
	"github.com/onsi/gomega/gexec"

	"github.com/pgdrill/pgdrill/harness/drilltest"
)

// existingFlags are the flags that point pgdrill at a fleet's servers.
func existingFlags(f drilltest.Fleet) []string {
	args := []string{"--provider", "existing", "--catalog-url", f.Catalog}
	for _, s := range f.Shards {
		args = append(args, "--shard-url", s)
	}
	return args
}

var _ = Describe("drills on servers pgdrill did not start", Label(drilltest.Slow), func() {
	var fleet drilltest.Fleet
	BeforeEach(func(ctx context.Context) {
		fleet = drilltest.StartFleet(ctx, drilltest.NewLocalProvider(ctx), 2)
	})

	It("drills them as a role that is not a superuser, with a blind runbook restore, while their owner writes, and leaves them as it found them", func(ctx context.Context) {
		fleet.Busy(ctx)
		before := fleet.Untouched(ctx)
		dir := GinkgoT().TempDir()
		file := filepath.Join(dir, "small.yaml")
		runbook := strings.Replace(smallDrill, "  objectives:", "  detection: {delay: 200ms, knowledge: blind}\n  restore: {strategy: runbook, runbook: {command: pgdrill restore --strategy pitr-sidecar}}\n  objectives:", 1)
		runbook = strings.Replace(runbook, "  detection: {delay: 200ms}\n", "", 1)
		Expect(os.WriteFile(file, []byte(runbook), 0o600)).To(Succeed())
		s := pgdrill(append([]string{"run", file, "--out", filepath.Join(dir, "reports"), "-o", "json"}, existingFlags(fleet)...)...).Wait(5 * time.Minute)
		Expect(s).To(gexec.Exit(0), string(s.Err.Contents()))
		var outcomes []struct {
			RunID    string `json:"run_id"`
			Provider string
			Verdict  string
		}
		Expect(json.Unmarshal(s.Out.Contents(), &outcomes)).To(Succeed())
		Expect(outcomes).To(ConsistOf(And(HaveField("Provider", "existing"), HaveField("Verdict", "PASS"))))
		Expect(s.Err).To(gbytes.Say("located the harm from the ticket"), "the runbook's pgdrill restore searched, attached to the run")
		Expect(fleet.Untouched(ctx)).To(Equal(before), "every database, the owner's rows, slots and WAL senders as they were")
		Expect(fleet.OpenedBy(drilltest.FleetRole)).To(HaveEach(Or(HaveSuffix("/postgres"), ContainSubstring("/pgdrill_"+outcomes[0].RunID))),
			"no database but the maintenance one and the run's own was opened")
		Expect(fleet.OpenedBy(drilltest.FleetRole)).To(ContainElement(HaveSuffix("/pgdrill_" + outcomes[0].RunID)))
		Expect(filepath.Join(stateDir, outcomes[0].RunID+".json")).NotTo(BeAnExistingFile())
	})

	It("drops the databases and stops the WAL receivers a SIGKILLed pgdrill up left, at pgdrill down --all", func(ctx context.Context) {
		before := fleet.Untouched(ctx)
		up := pgdrill(append([]string{"up", "--shards", "2", "-o", "json", "--tenants", "0"}, existingFlags(fleet)...)...)
		d := describeFrom(up)
		Expect(d.Provider).To(Equal("existing"))
		Expect(fleet.Untouched(ctx)).NotTo(Equal(before), "the run has databases and WAL senders on the servers")
		up.Kill().Wait(10 * time.Second)
		Expect(finish("ls").Out).To(gbytes.Say(d.RunID + `\s+existing\s+orphaned`))
		finish("down", "--all")
		Eventually(func() string { return fleet.Untouched(ctx) }, 30*time.Second).Should(Equal(before))
		Expect(filepath.Join(stateDir, d.RunID+".json")).NotTo(BeAnExistingFile())
	})

	It("refuses, before touching anything, a scenario that would destroy or stop a server, and too few servers for its shards", func(ctx context.Context) {
		before := fleet.Untouched(ctx)
		s := pgdrill(append([]string{"run", "shard-loss"}, existingFlags(fleet)...)...).Wait(time.Minute)
		Expect(s).To(gexec.Exit(2))
		Expect(s.Err).To(gbytes.Say(`shard-loss cannot run on existing servers.*shard-loss destroys a shard's server`))
		s = pgdrill(append([]string{"run", "wrong-id-deletion"}, existingFlags(fleet)...)...).Wait(time.Minute)
		Expect(s).To(gexec.Exit(2))
		Expect(s.Err).To(gbytes.Say(`has 4 shards \(spec.cluster.shards\) but 2 shard servers are named`))
		s = pgdrill("run", "wrong-id-deletion", "--provider", "existing").Wait(time.Minute)
		Expect(s).To(gexec.Exit(2))
		Expect(s.Err).To(gbytes.Say(`give --catalog-url URL and one --shard-url URL per shard`))
		Expect(fleet.Untouched(ctx)).To(Equal(before))
	})
})
