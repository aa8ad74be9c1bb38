package restore_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/backup"
	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/cluster/local"
	"github.com/pgdrill/pgdrill/harness/drilltest"
	"github.com/pgdrill/pgdrill/harness/drilltest/benchshard"
	"github.com/pgdrill/pgdrill/harness/incident"
	"github.com/pgdrill/pgdrill/harness/restore"
)

// BenchmarkPITRSidecar restores groups of 1, 10 and 100 deleted tenants from a ~1 GB shard with
// pitr-sidecar, and does the same work with the raw tools a person would use, in the same run:
// cp -a of the base backup, a bare postgres replaying the WAL archive to the same target, and
// psql \copy of the same rows out of it into the live shard's server. pgdrill goes first; the
// tenants are then deleted again and the raw tools restore them to the same target, so both
// replay the same WAL and copy the same rows into tables vacuumed after the deletion. It reports
// both, phase by phase, and the ratio (goal ≤ 1.0×), plus seconds per tenant beyond the raw
// tools'.
func BenchmarkPITRSidecar(b *testing.B) {
	for _, group := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("tenants=%d", group), func(b *testing.B) { benchSidecar(b, group) })
	}
}

// benchShard starts the benchmarks' one-shard cluster (benchshard.Start) and takes its base
// backup.
func benchShard(b *testing.B, p *local.Provider) (cluster.Cluster, *fixtures.Plan, backup.Protection) {
	c, plan := benchshard.Start(b, p)
	prot, err := backup.Protect(context.Background(), c, "bench")
	if err != nil {
		b.Fatal(err)
	}
	return c, plan, prot
}

// firstTenants are the plan's first n tenants, as an incident's victims.
func firstTenants(plan *fixtures.Plan, n int) []incident.Tenant {
	var out []incident.Tenant
	for _, t := range plan.Tenants[:n] {
		out = append(out, incident.Tenant{ID: t.ID, Shard: t.Shard})
	}
	return out
}

// vacuum vacuums the shard after a deletion, so that each restore writes into the same state of
// its tables: the first to insert among freshly deleted rows prunes them and marks their index
// entries dead, which made whichever restore went first seconds slower at 100 tenants.
func vacuum(b *testing.B, c cluster.Cluster) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.Shards()[0].DSN())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "VACUUM"); err != nil {
		b.Fatal(err)
	}
}

// rawPhases are the raw tools' steps: cp of the backup, the bare postgres's replay, psql's copy.
type rawPhases struct{ cp, replay, copy time.Duration }

func benchSidecar(b *testing.B, group int) {
	ctx := context.Background()
	p, err := local.New(ctx, local.WithStateDir(b.TempDir()), local.WithLogger(drilltest.DiscardLogger()))
	if err != nil {
		b.Fatal(err)
	}
	var ours, raw time.Duration
	var raws rawPhases
	phases := map[string]time.Duration{}
	var moved int64
	b.StopTimer()
	for range b.N {
		c, plan, prot := benchShard(b, p)
		victims := firstTenants(plan, group)
		rec, err := incident.DeleteTenants(ctx, c, "bench", victims)
		if err != nil {
			b.Fatal(err)
		}
		vacuum(b, c)
		if _, err := backup.ArchiveNow(ctx, c.Shards()[0]); err != nil {
			b.Fatal(err)
		}

		b.StartTimer()
		start := time.Now()
		res, err := restore.PITRSidecar{}.Restore(ctx, restore.Env{Cluster: c, Protection: prot, Log: drilltest.DiscardLogger()}, rec)
		ours += time.Since(start)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		moved += res.Rows()
		for _, ph := range res.Phases {
			phases[ph.Name] += ph.Duration()
		}

		// The tenants are deleted again; the raw tools restore them to the first deletion's
		// target, so they replay what pgdrill replayed, no more.
		if _, err := incident.DeleteTenants(ctx, c, "bench", victims); err != nil {
			b.Fatal(err)
		}
		vacuum(b, c)
		start = time.Now()
		r := rawRestore(b, p, c, prot.Backups[0], rec)
		raw += time.Since(start)
		raws.cp += r.cp
		raws.replay += r.replay
		raws.copy += r.copy
		if err := c.Destroy(ctx); err != nil {
			b.Fatal(err)
		}
	}
	n := float64(b.N)
	b.ReportMetric(ours.Seconds()/n, "pgdrill-s")
	b.ReportMetric(raw.Seconds()/n, "raw-s")
	b.ReportMetric(ours.Seconds()/raw.Seconds(), "x-raw")
	b.ReportMetric(phases[restore.PhaseProvision].Seconds()/n, "pgdrill-provision-s")
	b.ReportMetric(phases[restore.PhaseReplay].Seconds()/n, "pgdrill-replay-s")
	b.ReportMetric(phases[restore.PhaseMerge].Seconds()/n, "pgdrill-merge-s")
	b.ReportMetric(raws.cp.Seconds()/n, "raw-cp-s")
	b.ReportMetric(raws.replay.Seconds()/n, "raw-replay-s")
	b.ReportMetric(raws.copy.Seconds()/n, "raw-copy-s")
	b.ReportMetric(float64(moved)/n, "rows")
	b.ReportMetric((ours.Seconds()-raw.Seconds())/n/float64(group), "extra-s/tenant")
}

// rawRestore does by hand what pitr-sidecar does: copy the base backup, replay the archive with a
// bare postgres to just before the harm, and move the same rows with psql \copy into the live
// tables, parents first, keys and foreign keys checked as a person's restore would have them. It
// returns the time of each step.
func rawRestore(b *testing.B, p *local.Provider, c cluster.Cluster, bk cluster.Backup, rec incident.Record) rawPhases {
	ctx := context.Background()
	bins, user := p.Binaries(), p.RunUser()
	runAs := func(cmd *exec.Cmd) *exec.Cmd {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if user.Switch {
			cmd.SysProcAttr.Credential = &syscall.Credential{Uid: user.UID, Gid: user.GID}
		}
		return cmd
	}
	dir := filepath.Join(filepath.Dir(bk.Location), "raw")
	start := time.Now()
	if out, err := exec.Command("cp", "-a", bk.Location, dir).CombinedOutput(); err != nil {
		b.Fatalf("cp: %v: %s", err, out)
	}
	var took rawPhases
	took.cp = time.Since(start)
	start = time.Now()
	port, err := local.FreePort()
	if err != nil {
		b.Fatal(err)
	}
	conf := fmt.Sprintf("port = %d\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\narchive_mode = off\n"+
		"restore_command = 'cp %s/%%f %%p'\nrecovery_target_xid = '%s'\nrecovery_target_inclusive = false\n"+
		"recovery_target_action = promote\nfsync = off\n", port, dir, c.Shards()[0].Info().WALArchive, rec.Harms[0].XID)
	if err := os.WriteFile(filepath.Join(dir, "pgdrill.conf"), []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "recovery.signal"), nil, 0o644); err != nil {
		b.Fatal(err)
	}
	pg := runAs(exec.Command(bins.Path("postgres"), "-D", dir))
	if err := pg.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = pg.Process.Signal(syscall.SIGINT); _ = pg.Wait() }()
	dsn := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", port, cluster.DefaultDatabase)
	gomega.NewWithT(b).Eventually(func() (promoted bool, err error) {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return false, err
		}
		defer conn.Close(ctx)
		var inRecovery bool
		err = conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery)
		return !inRecovery, err
	}).WithTimeout(5*time.Minute).WithPolling(5*time.Millisecond).Should(gomega.BeTrue(), "raw replay finishes and promotes")
	took.replay = time.Since(start)

	start = time.Now()
	live := c.Shards()[0].DSN()
	var ids []string
	for _, t := range rec.Affected {
		ids = append(ids, fmt.Sprint(t.ID))
	}
	for _, t := range fixtures.Builtin().TenantTables() {
		psql := func(dsn, command string) *exec.Cmd {
			return exec.Command(bins.Path("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", dsn, "-c", command)
		}
		out := psql(dsn, `\copy (SELECT * FROM `+t.Name+` WHERE tenant_id IN (`+strings.Join(ids, ",")+`)) TO STDOUT`)
		in := psql(live, `\copy `+t.Name+` FROM STDIN`)
		pipe, err := out.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		in.Stdin = pipe
		if err := out.Start(); err != nil {
			b.Fatal(err)
		}
		if msg, err := in.CombinedOutput(); err != nil {
			b.Fatalf("psql \\copy in: %v: %s", err, msg)
		}
		if err := out.Wait(); err != nil {
			b.Fatalf("psql \\copy out: %v", err)
		}
	}
	took.copy = time.Since(start)
	return took
}

// BenchmarkDelayedStandby restores the same 10 deleted tenants of a ~1 GB shard twice: from a
// sidecar recovered from the base backup (pitr-sidecar), then — after the same tenants are deleted
// again — from a standby held standbyDelay behind (delayed-standby). Between the backup and the
// incident the shard writes a realistic backlog (a third of its rows updated, then a checkpoint)
// that the sidecar must replay and the standby has long applied. It reports both and their ratio
// (goal ≤ 0.2×).
func BenchmarkDelayedStandby(b *testing.B) {
	const standbyDelay = 2 * time.Second
	ctx := context.Background()
	p, err := local.New(ctx, local.WithStateDir(b.TempDir()), local.WithLogger(drilltest.DiscardLogger()))
	if err != nil {
		b.Fatal(err)
	}
	var sidecar, standby, standbyReplay, standbyMerge time.Duration
	b.StopTimer()
	for range b.N {
		c, plan, prot := benchShard(b, p)
		standbys, err := restore.StartStandbys(ctx, c, standbyDelay)
		if err != nil {
			b.Fatal(err)
		}
		conn, err := pgx.Connect(ctx, c.Shards()[0].DSN())
		if err != nil {
			b.Fatal(err)
		}
		for _, sql := range []string{"UPDATE comments SET updated_at = now() WHERE comment_id % 3 = 0",
			"UPDATE issues SET updated_at = now() WHERE issue_id % 3 = 0", "CHECKPOINT"} {
			if _, err := conn.Exec(ctx, sql); err != nil {
				b.Fatal(err)
			}
		}
		var backlogEnd string
		if err := conn.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&backlogEnd); err != nil {
			b.Fatal(err)
		}
		conn.Close(ctx)
		standbyConn, err := pgx.Connect(ctx, standbys[0].DSN())
		if err != nil {
			b.Fatal(err)
		}
		gomega.NewWithT(b).Eventually(func() (applied bool, err error) {
			err = standbyConn.QueryRow(ctx, "SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", backlogEnd).Scan(&applied)
			return applied, err
		}).WithTimeout(5*time.Minute).WithPolling(100*time.Millisecond).Should(gomega.BeTrue(),
			"the standby applies the backlog, checkpoint included, once its delay has passed")
		standbyConn.Close(ctx)
		env := restore.Env{Cluster: c, Protection: prot, Standbys: standbys, Log: drilltest.DiscardLogger()}
		victims := firstTenants(plan, 10)
		for i, s := range []restore.Strategy{restore.PITRSidecar{}, restore.DelayedStandby{}} {
			rec, err := incident.DeleteTenants(ctx, c, "bench", victims)
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			res, err := s.Restore(ctx, env, rec)
			if err != nil {
				b.Fatalf("%s: %v", s.Name(), err)
			}
			if i == 0 {
				sidecar += time.Since(start)
				continue
			}
			standby += time.Since(start)
			for _, ph := range res.Phases {
				switch ph.Name {
				case restore.PhaseReplay:
					standbyReplay += ph.Duration()
				case restore.PhaseMerge:
					standbyMerge += ph.Duration()
				}
			}
		}
	}
	n := float64(b.N)
	b.ReportMetric(sidecar.Seconds()/n, "sidecar-s")
	b.ReportMetric(standby.Seconds()/n, "standby-s")
	b.ReportMetric(standby.Seconds()/sidecar.Seconds(), "x-sidecar")
	b.ReportMetric(standbyReplay.Seconds()/n, "standby-replay-s")
	b.ReportMetric(standbyMerge.Seconds()/n, "standby-merge-s")
}
