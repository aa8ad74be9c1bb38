package container_test

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/cluster/container"
	"github.com/pgdrill/pgdrill/harness/dataset"
	"github.com/pgdrill/pgdrill/harness/drilltest"
	"github.com/pgdrill/pgdrill/harness/image"
)

var _ = Describe("the container provider", Label(drilltest.Docker, drilltest.Slow), func() {
	var p *container.Provider
	BeforeEach(func(ctx context.Context) {
		drilltest.NeedImage(ctx, image.DefaultTag, "pgdrill image build", "the container provider was not run")
		p = container.New(container.WithLogger(drilltest.DiscardLogger()))
	})

	// create starts a cluster and destroys it after the spec, whatever happens.
	create := func(ctx context.Context, spec cluster.Spec) cluster.Cluster {
		GinkgoHelper()
		c, err := p.Create(ctx, spec)
		if c != nil {
			DeferCleanup(func(ctx context.Context) { Expect(c.Destroy(ctx)).To(Succeed()) })
		}
		Expect(err).NotTo(HaveOccurred())
		return c
	}

	It("runs a catalog and shards as marked containers of the run, fills them, and survives a kill, a stop and a pause", func(ctx context.Context) {
		c := create(ctx, cluster.Spec{Shards: 2})
		Expect(c.Provider()).To(Equal("container"))
		Expect(labelled(ctx, "container", c.RunID())).To(HaveLen(3), "catalog and 2 shards")
		Expect(labelled(ctx, "network", c.RunID())).To(HaveLen(1), "one private network")
		for _, s := range append([]cluster.Server{c.Catalog()}, c.Shards()...) {
			conn := drilltest.Connect(ctx, s.DSN())
			Expect(cluster.RequireMarker(ctx, conn, c.RunID())).To(Succeed(), s.Name())
		}
		plan, _, err := dataset.Fill(ctx, c, dataset.Schema{}, fixtures.PlanSpec{Seed: 3, Tenants: 8, Rows: 2000}, fixtures.FillOptions{})
		Expect(err).NotTo(HaveOccurred())
		shard := c.Shards()[1]
		rows := func() int64 { return drilltest.QueryInt(ctx, shard.DSN(), "SELECT count(*) FROM users") }
		before := rows()
		Expect(before).To(BeNumerically(">", 0))
		Expect(plan.OnShard(1)).NotTo(BeEmpty())

		By("killing the shard: its data stays, and a start recovers it at the same address")
		dsn := shard.DSN()
		Expect(shard.Kill(ctx)).To(Succeed())
		_, err = pgx.Connect(ctx, dsn)
		Expect(err).To(HaveOccurred())
		Expect(shard.Start(ctx)).To(Succeed())
		Expect(shard.DSN()).To(Equal(dsn))
		Expect(rows()).To(Equal(before))

		By("stopping and starting it cleanly")
		Expect(shard.Stop(ctx)).To(Succeed())
		Expect(shard.Start(ctx)).To(Succeed())
		Expect(rows()).To(Equal(before))

		By("pausing it: connections hang until it resumes")
		Expect(shard.Pause(ctx)).To(Succeed())
		Expect(shard.Info().Paused).To(BeTrue())
		short, cancel := context.WithTimeout(ctx, time.Second)
		_, err = pgx.Connect(short, dsn)
		cancel()
		Expect(err).To(HaveOccurred())
		Expect(shard.Resume(ctx)).To(Succeed())
		Expect(rows()).To(Equal(before))

		By("saying plainly what it cannot do yet")
		_, err = c.PrepareSidecar(ctx, cluster.SidecarSpec{})
		Expect(errors.Is(err, container.ErrNotYet)).To(BeTrue(), "%v", err)
		_, err = shard.BaseBackup(ctx, "x")
		Expect(errors.Is(err, container.ErrNotYet)).To(BeTrue(), "%v", err)

		By("leaving nothing of the run after Destroy")
		Expect(c.Destroy(ctx)).To(Succeed())
		Expect(labelled(ctx, "container", c.RunID())).To(BeEmpty())
		Expect(labelled(ctx, "network", c.RunID())).To(BeEmpty())
	})

	It("loses a shard with its data", func(ctx context.Context) {
		c := create(ctx, cluster.Spec{Shards: 1})
		shard := c.Shards()[0]
		Expect(shard.Lose(ctx)).To(Succeed())
		Expect(labelled(ctx, "container", c.RunID())).To(HaveLen(1), "the catalog alone")
		Expect(shard.Start(ctx)).To(MatchError(ContainSubstring("gone")))
	})

	It("sweeps what a killed run left, and nothing without its label", func(ctx context.Context) {
		c, err := p.Create(ctx, cluster.Spec{Shards: 1})
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
		Expect(n).To(Equal(3), "2 containers and the network")
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
