package netproxy_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/drilltest"
	"github.com/pgdrill/pgdrill/harness/fault/netproxy"
)

// newNetwork returns a network closed when the spec ends.
func newNetwork() *netproxy.Network {
	n := netproxy.New(drilltest.DiscardLogger())
	DeferCleanup(func() { Expect(n.Close()).To(Succeed()) })
	return n
}

// proxiedShard returns shard 0 of the shared cluster through a network of the spec's own, and
// its proxy.
func proxiedShard() (cluster.Server, *netproxy.Proxy) {
	GinkgoHelper()
	n := newNetwork()
	shard := n.Cluster(shared).Shards()[0]
	p, err := n.Proxy(shard)
	Expect(err).NotTo(HaveOccurred())
	return shard, p
}

// roundTrip times one prepared SELECT 1: one round trip once the statement is cached.
func roundTrip(ctx context.Context, conn *pgx.Conn) time.Duration {
	GinkgoHelper()
	start := time.Now()
	var one int
	Expect(conn.QueryRow(ctx, "SELECT 1").Scan(&one)).To(Succeed())
	return time.Since(start)
}

// warmConnection opens a connection whose SELECT 1 is prepared already.
func warmConnection(ctx context.Context, dsn string) *pgx.Conn {
	GinkgoHelper()
	conn := drilltest.Connect(ctx, dsn)
	roundTrip(ctx, conn)
	return conn
}

func expectRefused(addr string) {
	GinkgoHelper()
	start := time.Now()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		c.Close()
	}
	Expect(err).To(MatchError(syscall.ECONNREFUSED), "dialing %s", addr)
	Expect(time.Since(start)).To(BeNumerically("<", 100*time.Millisecond), "refused at once")
}

// ourGoroutines are the stacks of goroutines of Toxiproxy or of the proxies.
func ourGoroutines() []string {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	var ours []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "github.com/Shopify/toxiproxy") || strings.Contains(g, "harness/fault/netproxy.") {
			ours = append(ours, g)
		}
	}
	return ours
}

var _ = Describe("a network in front of a cluster", func() {
	It("reaches a shard through its proxy, on the proxy's port", func(ctx context.Context) {
		shard, p := proxiedShard()
		real := shared.Shards()[0]
		u, err := url.Parse(shard.DSN())
		Expect(err).NotTo(HaveOccurred())
		Expect(u.Host).To(Equal(p.Listen()))
		Expect(u.Port()).NotTo(Equal(strconv.Itoa(real.Info().Port)))
		Expect(p.Server()).To(Equal(real.Name()))
		Expect(p.Upstream()).To(Equal(fmt.Sprintf("127.0.0.1:%d", real.Info().Port)))
		Expect(p.Faults()).To(BeEmpty())

		var port int
		Expect(drilltest.Connect(ctx, shard.DSN()).QueryRow(ctx, "SELECT inet_server_port()").Scan(&port)).To(Succeed())
		Expect(port).To(Equal(real.Info().Port), "the proxy leads to the real server")
	})

	It("points Info, DSNFor and CreateDatabase's URL at the proxy, one proxy per server", func(ctx context.Context) {
		n := newNetwork()
		c := n.Cluster(shared)
		shard, catalog := c.Shards()[0], c.Catalog()
		p, err := n.Proxy(shard)
		Expect(err).NotTo(HaveOccurred())

		info := shard.Info()
		Expect(net.JoinHostPort(info.Host, strconv.Itoa(info.Port))).To(Equal(p.Listen()))
		Expect(info.DSN).To(Equal(shard.DSN()))
		Expect(info).To(HaveField("Name", shared.Shards()[0].Name()))
		Expect(cluster.Describe(c).Shards[0].Port).To(Equal(info.Port))

		created, err := shard.CreateDatabase(ctx, "netproxy_other")
		Expect(err).NotTo(HaveOccurred())
		other := shard.DSNFor("netproxy_other")
		Expect(created).To(Equal(other))
		u, err := url.Parse(other)
		Expect(err).NotTo(HaveOccurred())
		Expect(u.Host).To(Equal(p.Listen()))
		var db string
		Expect(drilltest.Connect(ctx, other).QueryRow(ctx, "SELECT current_database()").Scan(&db)).To(Succeed())
		Expect(db).To(Equal("netproxy_other"))

		Expect(catalog.Info().Port).NotTo(Equal(info.Port), "the catalog has a proxy of its own")
		Expect(c.Shards()[0] == shard).To(BeTrue(), "wrapping the same server again gives an equal server")
		Expect(n.Proxies()).To(HaveLen(2))
		Expect(n.Proxies()[1]).To(BeIdenticalTo(p), "sorted by server name: catalog, shard-0")
		again, err := n.Proxy(shared.Shards()[0])
		Expect(err).NotTo(HaveOccurred())
		Expect(again).To(BeIdenticalTo(p), "the real server has the same proxy")

		By("cutting the shard, which the other database is reached through too")
		Expect(p.Cut()).To(Succeed())
		_, err = pgx.Connect(ctx, other)
		Expect(err).To(MatchError(syscall.ECONNREFUSED))
		drilltest.Connect(ctx, catalog.DSN()) // not cut
		Expect(p.Heal()).To(Succeed())
		drilltest.Connect(ctx, other)
	})

	It("adds latency to a round trip until healed", func(ctx context.Context) {
		shard, p := proxiedShard()
		conn := warmConnection(ctx, shard.DSN())
		Expect(roundTrip(ctx, conn)).To(BeNumerically("<", 50*time.Millisecond))

		Expect(p.AddLatency(200*time.Millisecond, 0)).To(Succeed())
		Expect(p.Faults()).To(ConsistOf(`latency downstream {"latency":200,"jitter":0}`))
		Expect(p.AddLatency(time.Second, 0)).To(MatchError(ContainSubstring("already exists")))
		slow := roundTrip(ctx, conn)
		GinkgoWriter.Printf("round trip with 200ms latency: %s\n", slow)
		Expect(slow).To(And(BeNumerically(">=", 195*time.Millisecond), BeNumerically("<", 390*time.Millisecond)),
			"one round trip, delayed once")

		Expect(p.Heal()).To(Succeed())
		Expect(p.Faults()).To(BeEmpty())
		Expect(roundTrip(ctx, conn)).To(BeNumerically("<", 50*time.Millisecond), "the same connection, fast again")
	})

	It("cuts open connections and refuses new ones until healed, on the same port", func(ctx context.Context) {
		shard, p := proxiedShard()
		dsn := shard.DSN()
		conn := warmConnection(ctx, dsn)

		Expect(p.Cut()).To(Succeed())
		Expect(p.Faults()).To(ConsistOf("cut"))
		Expect(p.Cut()).To(Succeed(), "cutting twice is cutting")
		_, err := conn.Exec(ctx, "SELECT 1")
		Expect(err).To(HaveOccurred(), "the open connection was closed")
		expectRefused(p.Listen())
		start := time.Now()
		_, err = pgx.Connect(ctx, dsn)
		Expect(err).To(MatchError(syscall.ECONNREFUSED))
		Expect(time.Since(start)).To(BeNumerically("<", time.Second))

		Expect(p.Heal()).To(Succeed())
		Expect(p.Faults()).To(BeEmpty())
		Expect(shard.DSN()).To(Equal(dsn))
		roundTrip(ctx, drilltest.Connect(ctx, dsn))
	})

	It("stalls connections half-open, so that queries hang, until healed", func(ctx context.Context) {
		shard, p := proxiedShard()
		conn := warmConnection(ctx, shard.DSN())
		startup, err := (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30,
			Parameters: map[string]string{"user": "postgres", "database": cluster.DefaultDatabase}}).Encode(nil)
		Expect(err).NotTo(HaveOccurred())
		// probe starts a raw connection and reads the first byte of the answer to its startup.
		probe := func() (net.Conn, error) {
			raw, err := net.Dial("tcp", p.Listen())
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(raw.Close)
			_, err = raw.Write(startup)
			Expect(err).NotTo(HaveOccurred())
			Expect(raw.SetReadDeadline(time.Now().Add(500 * time.Millisecond))).To(Succeed())
			_, err = raw.Read(make([]byte, 1))
			return raw, err
		}
		_, err = probe()
		Expect(err).NotTo(HaveOccurred(), "the server answers a startup at once")

		Expect(p.AddStall()).To(Succeed())
		Expect(p.Faults()).To(ConsistOf(`timeout upstream {"timeout":0}`, `timeout downstream {"timeout":0}`))
		qctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		start := time.Now()
		_, err = conn.Exec(qctx, "SELECT 1")
		Expect(err).To(HaveOccurred())
		Expect(time.Since(start)).To(BeNumerically(">=", 950*time.Millisecond), "the query hung until its deadline")
		Expect(qctx.Err()).To(MatchError(context.DeadlineExceeded))

		raw, err := probe()
		Expect(err).To(MatchError(os.ErrDeadlineExceeded), "accepted, open, and nothing delivered")

		Expect(p.Heal()).To(Succeed())
		Expect(raw.SetReadDeadline(time.Now().Add(time.Second))).To(Succeed())
		_, err = raw.Read(make([]byte, 1))
		Expect(err).To(MatchError(io.EOF), "Heal closes the stalled connections")
		roundTrip(ctx, drilltest.Connect(ctx, shard.DSN()))
	})

	It("resets connections once they carry data", func(ctx context.Context) {
		shard, p := proxiedShard()
		conn := warmConnection(ctx, shard.DSN())
		// pgx's simple protocol (Exec without arguments) reports a reset as "conn closed"; the
		// extended protocol keeps the cause.
		queryOne := func(conn *pgx.Conn) error {
			var one int
			return conn.QueryRow(ctx, "SELECT 1").Scan(&one)
		}

		Expect(p.AddReset(0)).To(Succeed())
		Expect(p.Faults()).To(ConsistOf(`pgdrill_reset_peer upstream {"timeout":0}`,
			`pgdrill_reset_peer downstream {"timeout":0}`))
		Expect(queryOne(conn)).To(MatchError(syscall.ECONNRESET))
		_, err := pgx.Connect(ctx, shard.DSN())
		Expect(err).To(MatchError(syscall.ECONNRESET), "a new connection is reset as it starts")
		Expect(p.Heal()).To(Succeed())

		By("resetting after a delay")
		conn = warmConnection(ctx, shard.DSN())
		Expect(p.AddReset(300 * time.Millisecond)).To(Succeed())
		start := time.Now()
		Expect(queryOne(conn)).To(MatchError(syscall.ECONNRESET))
		Expect(time.Since(start)).To(BeNumerically(">=", 300*time.Millisecond))
		Expect(p.Heal()).To(Succeed())
		Expect(queryOne(drilltest.Connect(ctx, shard.DSN()))).To(Succeed())
	})

	It("limits the bandwidth both ways", func(ctx context.Context) {
		shard, p := proxiedShard()
		conn := warmConnection(ctx, shard.DSN())
		// transfer times a query moving bytes to the client (down) or to the server (up).
		transfer := func(down, up int) time.Duration {
			GinkgoHelper()
			start := time.Now()
			var got string
			Expect(conn.QueryRow(ctx, "SELECT repeat('x', $1) || length($2::text)", down, strings.Repeat("y", up)).
				Scan(&got)).To(Succeed())
			Expect(got).To(HaveLen(down + len(strconv.Itoa(up))))
			return time.Since(start)
		}
		Expect(transfer(500_000, 250_000)).To(BeNumerically("<", 500*time.Millisecond))

		Expect(p.AddBandwidth(250)).To(Succeed())
		down := transfer(500_000, 0)
		up := transfer(0, 250_000)
		GinkgoWriter.Printf("at 250 KB/s: 500 KB down in %s, 250 KB up in %s\n", down, up)
		Expect(down).To(And(BeNumerically(">=", 1500*time.Millisecond), BeNumerically("<", 5*time.Second)))
		Expect(up).To(And(BeNumerically(">=", 750*time.Millisecond), BeNumerically("<", 3*time.Second)))

		Expect(p.Heal()).To(Succeed())
		Expect(transfer(500_000, 250_000)).To(BeNumerically("<", 500*time.Millisecond))
	})

	It("closes every proxy, even under load, leaving no port and no goroutine behind", func(ctx context.Context) {
		n, stalling := newNetwork(), newNetwork()
		c := n.Cluster(shared)
		shard, catalog := c.Shards()[0], c.Catalog()
		throttled, err := n.Proxy(shard)
		Expect(err).NotTo(HaveOccurred())
		stalled, err := stalling.Proxy(catalog)
		Expect(err).NotTo(HaveOccurred())

		By("leaving bytes in flight: throttled, stalled, and unread by their client")
		streaming := warmConnection(ctx, shard.DSN())
		hanging := warmConnection(ctx, stalling.Cluster(shared).Catalog().DSN())
		Expect(throttled.AddBandwidth(100)).To(Succeed())
		Expect(stalled.AddStall()).To(Succeed())
		results := make(chan error, 2)
		go func() {
			var s string
			results <- streaming.QueryRow(ctx, "SELECT repeat('x', 10000000)").Scan(&s)
		}()
		go func() {
			_, err := hanging.Exec(ctx, "SELECT 1")
			results <- err
		}()
		unread, err := net.Dial("tcp", catalog.Info().Host+":"+strconv.Itoa(catalog.Info().Port))
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(unread.Close)
		startup, err := (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30,
			Parameters: map[string]string{"user": "postgres", "database": cluster.DefaultDatabase}}).Encode(nil)
		Expect(err).NotTo(HaveOccurred())
		query, err := (&pgproto3.Query{String: "SELECT repeat('x', 50000000)"}).Encode(startup)
		Expect(err).NotTo(HaveOccurred())
		_, err = unread.Write(query)
		Expect(err).NotTo(HaveOccurred())
		time.Sleep(300 * time.Millisecond)

		for _, n := range []*netproxy.Network{n, stalling} {
			start := time.Now()
			Expect(n.Close()).To(Succeed())
			Expect(time.Since(start)).To(BeNumerically("<", time.Second), "nothing to wait out")
		}
		for range 2 {
			Eventually(results).Should(Receive(HaveOccurred()), "the queries in flight failed")
		}
		for _, p := range append(n.Proxies(), stalling.Proxies()...) {
			expectRefused(p.Listen())
		}
		Eventually(ourGoroutines).WithTimeout(time.Second).Should(BeEmpty())
		Expect(n.Close()).To(Succeed(), "closing twice")

		By("leaving the wrapped cluster usable, straight to its servers")
		Expect(throttled.Heal()).To(MatchError(ContainSubstring("network closed")))
		_, err = n.Proxy(shard)
		Expect(err).To(MatchError(ContainSubstring("network closed")))
		Expect(shard.DSN()).To(Equal(shared.Shards()[0].DSN()))
		Expect(shard.Info().Port).To(Equal(shared.Shards()[0].Info().Port))
		roundTrip(ctx, drilltest.Connect(ctx, shard.DSN()))
	})

	It("takes faults and clients from several goroutines at once", func(ctx context.Context) {
		shard, p := proxiedShard()
		var wg sync.WaitGroup
		faults := []func(){
			func() { _ = p.AddLatency(time.Millisecond, time.Millisecond) },
			func() { _ = p.AddBandwidth(10_000) },
			func() { _ = p.AddStall() },
			func() { _ = p.AddReset(0) },
			func() { _ = p.Cut() },
			func() { _ = p.Heal() },
			func() { _ = p.Faults(); _ = shard.Info(); _ = p.Upstream() },
		}
		for _, fault := range faults {
			wg.Go(func() {
				for range 20 {
					fault()
					time.Sleep(time.Millisecond)
				}
			})
		}
		for range 4 {
			wg.Go(func() {
				for range 10 {
					qctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
					if conn, err := pgx.Connect(qctx, shard.DSN()); err == nil {
						_, _ = conn.Exec(qctx, "SELECT 1")
						_ = conn.Close(qctx)
					}
					cancel()
				}
			})
		}
		wg.Wait()
		Expect(p.Heal()).To(Succeed())
		Expect(p.Faults()).To(BeEmpty())
		roundTrip(ctx, drilltest.Connect(ctx, shard.DSN()))
	})

	It("follows sidecars and standbys, and servers handed back in", func(ctx context.Context) {
		c := drilltest.StartCluster(ctx, provider, cluster.Spec{Shards: 1})
		n := newNetwork()
		w := n.Cluster(c)
		shard := w.Shards()[0]
		dsn := shard.DSN()
		drilltest.Exec(ctx, dsn, "CREATE TABLE t (id int)", "INSERT INTO t VALUES (1)")
		backup, err := shard.BaseBackup(ctx, "netproxy")
		Expect(err).NotTo(HaveOccurred())
		drilltest.Exec(ctx, dsn, "INSERT INTO t VALUES (2)", "SELECT pg_create_restore_point('p')", "SELECT pg_switch_wal()")
		Eventually(func() []string { names, _ := shard.ArchivedWAL(ctx); return names }).ShouldNot(BeEmpty())

		By("handing out a sidecar's address before it has a port")
		sidecar, err := w.PrepareSidecar(ctx, cluster.SidecarSpec{From: backup, Target: cluster.RecoveryTarget{Name: "p"}})
		Expect(err).NotTo(HaveOccurred())
		sidecarDSN := sidecar.DSN()
		Expect(sidecar.Start(ctx)).To(Succeed())
		Expect(drilltest.QueryInt(ctx, sidecarDSN, "SELECT count(*) FROM t")).To(BeEquivalentTo(2))
		p, err := n.Proxy(sidecar)
		Expect(err).NotTo(HaveOccurred())
		Expect(p.Upstream()).NotTo(HaveSuffix(":0"), "the proxy followed the sidecar to its port")

		By("replacing the shard's data with the wrapped sidecar's")
		drilltest.Exec(ctx, dsn, "INSERT INTO t VALUES (3)")
		Expect(w.ReplaceData(ctx, shard, sidecar)).To(Succeed())
		Expect(drilltest.QueryInt(ctx, dsn, "SELECT count(*) FROM t")).To(BeEquivalentTo(2), "through the same address")

		By("starting a standby of the wrapped shard")
		sb, err := w.StartStandby(ctx, shard, cluster.StandbySpec{})
		Expect(err).NotTo(HaveOccurred())
		sp, err := n.Proxy(sb)
		Expect(err).NotTo(HaveOccurred())
		Expect(sb.Info().Port).To(Equal(portOf(sp.Listen())))
		Expect(drilltest.QueryInt(ctx, sb.DSN(), "SELECT pg_is_in_recovery()::int")).To(BeEquivalentTo(1))
		Expect(sb.PauseReplay(ctx)).To(Succeed())
		Expect(sp.Cut()).To(Succeed())
		_, err = pgx.Connect(ctx, sb.DSN())
		Expect(err).To(MatchError(syscall.ECONNREFUSED))
		Expect(sp.Heal()).To(Succeed())
	})
})

func portOf(addr string) int {
	GinkgoHelper()
	_, port, err := net.SplitHostPort(addr)
	Expect(err).NotTo(HaveOccurred())
	n, err := strconv.Atoi(port)
	Expect(err).NotTo(HaveOccurred())
	return n
}
