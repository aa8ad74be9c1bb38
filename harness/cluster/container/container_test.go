package container_test

import (
	"context"
	"errors"
	"os/exec"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/cluster/conformance"
	"github.com/pgdrill/pgdrill/harness/cluster/container"
	"github.com/pgdrill/pgdrill/harness/dataset"
	"github.com/pgdrill/pgdrill/harness/drilltest"
	"github.com/pgdrill/pgdrill/harness/image"
	"github.com/pgdrill/pgdrill/harness/runstate"
)

var _ = conformance.Specs("container", conformance.Subject{
	Provider: func() cluster.Provider { return provider },
	Attach:   func(ctx context.Context, runID string) (cluster.Cluster, error) { return provider.Attach(ctx, runID) },
	Store:    func() *runstate.Store { return store },
	Footprint: func(ctx context.Context, c cluster.Cluster) func() []string {
		return func() []string {
			var left []string
			for _, kind := range []string{"container", "network", "volume"} {
				for _, id := range labelled(ctx, kind, c.RunID()) {
					left = append(left, kind+" "+id)
				}
			}
			return left
		}
	},
}, drilltest.Docker, drilltest.Slow)

var _ = Describe("the container provider", Label(drilltest.Docker, drilltest.Slow), func() {
	It("runs every server of a run on its private network, labelled, its files in the run's volume", func(ctx context.Context) {
		c := drilltest.StartCluster(ctx, provider, cluster.Spec{Shards: 2})
		Expect(labelled(ctx, "container", c.RunID())).To(HaveLen(4), "catalog, 2 shards and the tools container")
		Expect(labelled(ctx, "network", c.RunID())).To(HaveLen(1), "one private network")
		Expect(labelled(ctx, "volume", c.RunID())).To(HaveLen(1), "one volume")
		plan, _, err := dataset.Fill(ctx, c, dataset.Schema{}, fixtures.PlanSpec{Seed: 3, Tenants: 8, Rows: 2000}, fixtures.FillOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(plan.OnShard(1)).NotTo(BeEmpty())
		shard := c.Shards()[1]
		Expect(shard.Info().DataDir).To(HavePrefix("/pgdrill/data/"))
		Expect(shard.Info().WALArchive).To(Equal("/pgdrill/wal/shard-1"))
		Expect(shard.Info().DataDir).NotTo(BeADirectory(), "nothing of it is on pgdrill's own filesystem")

		By("keeping every sidecar and standby in the run, to go with it")
		backup, err := shard.BaseBackup(ctx, "b")
		Expect(err).NotTo(HaveOccurred())
		sidecar, err := c.PrepareSidecar(ctx, cluster.SidecarSpec{From: backup})
		Expect(err).NotTo(HaveOccurred())
		Expect(sidecar.Start(ctx)).To(Succeed())
		_, err = c.StartStandby(ctx, shard, cluster.StandbySpec{})
		Expect(err).NotTo(HaveOccurred())
		Expect(labelled(ctx, "container", c.RunID())).To(HaveLen(6))
		Expect(c.Destroy(ctx)).To(Succeed())
		for _, kind := range []string{"container", "network", "volume"} {
			Expect(labelled(ctx, kind, c.RunID())).To(BeEmpty(), kind)
		}
	})

	It("refuses what it cannot do yet, before starting anything", func(ctx context.Context) {
		c, err := provider.Create(ctx, cluster.Spec{Shards: 1, SidecarDisks: true})
		drilltest.DestroyWhenDone(c)
		Expect(c).To(BeNil())
		Expect(errors.Is(err, container.ErrNotYet)).To(BeTrue(), "%v", err)
	})

	It("says which image is missing and how to build it", func(ctx context.Context) {
		p := container.New(container.WithImage("pgdrill/none:0"), container.WithLogger(drilltest.DiscardLogger()))
		c, err := p.Create(ctx, cluster.Spec{Shards: 1})
		drilltest.DestroyWhenDone(c)
		Expect(err).To(MatchError(ContainSubstring("pgdrill image build")))
	})

	It("sweeps what a killed run left, and nothing without its label", func(ctx context.Context) {
		c, err := provider.Create(ctx, cluster.Spec{Shards: 1})
		if c != nil { // should the spec fail before its own sweep
			DeferCleanup(func(ctx context.Context) { _, _ = container.Sweep(ctx, c.RunID()) })
		}
		Expect(err).NotTo(HaveOccurred())
		// Not destroyed: as if the process that made it had been killed. Beside it, a container
		// pgdrill did not start, carrying another label.
		out, err := exec.CommandContext(ctx, "docker", "create", "--label", "dev.pgdrill.other=1", image.DefaultTag).CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), string(out))
		foreign := strings.TrimSpace(string(out))
		DeferCleanup(func(ctx context.Context) { _ = exec.CommandContext(ctx, "docker", "rm", "-f", foreign).Run() })

		n, err := container.Sweep(ctx, c.RunID())
		Expect(err).NotTo(HaveOccurred())
		Expect(n).To(Equal(5), "3 containers, the network and the volume")
		Expect(labelled(ctx, "container", c.RunID())).To(BeEmpty())
		Expect(exec.CommandContext(ctx, "docker", "inspect", foreign).Run()).To(Succeed(), "what pgdrill did not start stays")
	})
})

// labelled lists the ids of the docker objects (container, network, volume) carrying run's label.
func labelled(ctx context.Context, kind, run string) []string {
	GinkgoHelper()
	args := []string{kind, "ls", "-q", "--filter", "label=" + container.LabelRun + "=" + run}
	if kind == "container" {
		args = []string{"ps", "-a", "-q", "--filter", "label=" + container.LabelRun + "=" + run}
	}
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), string(out))
	return strings.Fields(string(out))
}
