package drilltest

import (
	"context"
	"io"
	"log/slog"
	"os"

	"github.com/jackc/pgx/v5"
	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/cluster/local"
)

// DiscardLogger is a logger for specs: the servers' own logs are what a failure needs.
func DiscardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// NewLocalProvider returns a local provider with a state dir of its own, so that nothing another
// suite runs concurrently is listed or reaped by this one. Call it in BeforeSuite.
func NewLocalProvider(ctx context.Context) *local.Provider {
	ginkgo.GinkgoHelper()
	stateDir, err := os.MkdirTemp("", "pgdrill-spec-state-")
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	ginkgo.DeferCleanup(os.RemoveAll, stateDir)
	p, err := local.New(ctx, local.WithStateDir(stateDir), local.WithLogger(DiscardLogger()))
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	return p
}

// StartCluster starts a cluster whose teardown is registered before its error is checked.
func StartCluster(ctx context.Context, p cluster.Provider, spec cluster.Spec) cluster.Cluster {
	ginkgo.GinkgoHelper()
	c, err := p.Create(ctx, spec)
	DestroyWhenDone(c)
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	return c
}

// DestroyWhenDone registers c's teardown, expected to succeed, for when the spec ends. Call it
// right after whatever returned c (Create, which returns a partial cluster with its error, or
// Attach), before checking the error or anything else that could fail the spec: a failed
// assertion must not leave servers running. A nil c registers nothing. Destroy is idempotent, so
// a spec may still destroy c itself to check what that does.
func DestroyWhenDone(c cluster.Cluster) {
	if c != nil {
		ginkgo.DeferCleanup(func(ctx context.Context) {
			gomega.Expect(c.Destroy(ctx)).To(gomega.Succeed())
		})
	}
}

// Connect opens a connection that is closed when the spec ends.
func Connect(ctx context.Context, dsn string) *pgx.Conn {
	ginkgo.GinkgoHelper()
	conn, err := pgx.Connect(ctx, dsn)
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	ginkgo.DeferCleanup(func(ctx context.Context) { _ = conn.Close(ctx) })
	return conn
}

// Exec runs statements in order on one connection, failing the spec on the first error.
func Exec(ctx context.Context, dsn string, sql ...string) {
	ginkgo.GinkgoHelper()
	conn := Connect(ctx, dsn)
	for _, s := range sql {
		_, err := conn.Exec(ctx, s)
		gomega.Expect(err).NotTo(gomega.HaveOccurred(), s)
	}
}

// QueryInt runs a query returning one integer.
func QueryInt(ctx context.Context, dsn, sql string) int64 {
	ginkgo.GinkgoHelper()
	var n int64
	gomega.Expect(Connect(ctx, dsn).QueryRow(ctx, sql).Scan(&n)).To(gomega.Succeed())
	return n
}

// XIDOf runs stmt in a transaction of its own on dsn and returns the transaction's id: the
// recovery target of a spec that restores to just before it.
func XIDOf(ctx context.Context, dsn, stmt string) string {
	ginkgo.GinkgoHelper()
	conn := Connect(ctx, dsn)
	tx, err := conn.Begin(ctx)
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	var xid string
	gomega.Expect(tx.QueryRow(ctx, "SELECT pg_current_xact_id()::text").Scan(&xid)).To(gomega.Succeed())
	_, err = tx.Exec(ctx, stmt)
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	gomega.Expect(tx.Commit(ctx)).To(gomega.Succeed())
	return xid
}
