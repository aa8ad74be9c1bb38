package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/pgdrill/pgdrill/harness/cluster/local"
	"github.com/pgdrill/pgdrill/harness/exitcode"
)

// check is one line of `pgdrill doctor`.
type check struct {
	Name   string `json:"name"`
	Status string `json:"status"` // ok, warn or fail
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// minFreeSpace is the free space below which doctor warns: a default drill needs ~2 GiB for
// shards, backups, WAL archive and a sidecar.
const minFreeSpace = 2 << 30

func (a *app) doctorCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "Check that this machine can run drills, and say how to fix what is missing",
		Long: `Check the Postgres binaries, the account servers run as, the work root and state directory,
leftover clusters, and the Docker engine (needed only by the container provider). Changes nothing.
Exits 3 when a check fails.`,
		Example: "  pgdrill doctor\n  pgdrill doctor -o json --pg-bin /usr/lib/postgresql/15/bin",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			checks := a.runChecks(cmd.Context())
			if err := a.print(checks, func(w io.Writer) { printChecks(w, checks) }); err != nil {
				return err
			}
			failed := 0
			for _, c := range checks {
				if c.Status == "fail" {
					failed++
				}
			}
			if failed > 0 {
				return exitcode.With(fmt.Errorf("doctor: %d check(s) failed", failed), exitcode.HarnessError)
			}
			return nil
		},
	}
}

func (a *app) runChecks(ctx context.Context) []check {
	var out []check
	bins, err := local.FindBinaries(ctx, a.pgBin)
	if err != nil {
		out = append(out, check{"postgres binaries", "fail", err.Error(), local.InstallHint})
	} else {
		out = append(out, check{"postgres binaries", "ok",
			fmt.Sprintf("PostgreSQL %s in %s (found by %s)", bins.Version, bins.Dir, bins.FoundBy), ""})
		var missing []string
		for _, tool := range []string{"pg_verifybackup", "pg_waldump", "pg_dump", "psql"} {
			if _, err := os.Stat(bins.Path(tool)); err != nil {
				missing = append(missing, tool)
			}
		}
		if len(missing) > 0 {
			out = append(out, check{"postgres tools", "warn", "missing " + strings.Join(missing, ", ") +
				" (backup verification and benchmarks need them)", "install postgresql-client-" + bins.Major})
		} else {
			out = append(out, check{"postgres tools", "ok", "pg_verifybackup, pg_waldump, pg_dump, psql present", ""})
		}
	}
	out = append(out, a.checkRunUser())
	out = append(out, checkDir("work root", a.workRootOrDefault()))
	store, err := a.store()
	if err != nil {
		out = append(out, check{"state dir", "fail", err.Error(), "pass --state-dir or set PGDRILL_STATE_DIR to a writable directory"})
	} else {
		recs, err := store.List()
		switch {
		case err != nil:
			out = append(out, check{"state dir", "fail", err.Error(), "remove unreadable files from " + store.Dir()})
		default:
			orphaned := 0
			for _, r := range recs {
				if r.Orphaned() {
					orphaned++
				}
			}
			c := check{"state dir", "ok", fmt.Sprintf("%s, %d live cluster(s)", store.Dir(), len(recs)), ""}
			if orphaned > 0 {
				c.Status, c.Detail = "warn", c.Detail+fmt.Sprintf(", %d left by a killed run", orphaned)
				c.Fix = "pgdrill down --all"
			}
			out = append(out, c)
		}
	}
	return append(out, checkDocker(ctx))
}

func (a *app) workRootOrDefault() string {
	if a.workRoot != "" {
		return a.workRoot
	}
	return local.DefaultWorkRoot()
}

func (a *app) checkRunUser() check {
	if os.Geteuid() != 0 {
		u, err := user.Current()
		if err != nil {
			return check{"run user", "fail", err.Error(), "run pgdrill as a regular user with a passwd entry"}
		}
		return check{"run user", "ok", "servers run as " + u.Username, ""}
	}
	if _, err := user.Lookup(a.runUser); err == nil {
		return check{"run user", "ok", "running as root; servers run as " + a.runUser, ""}
	}
	if _, err := exec.LookPath("useradd"); err == nil {
		return check{"run user", "ok", "running as root; account " + a.runUser + " will be created on first use", ""}
	}
	return check{"run user", "fail", "running as root, account " + a.runUser + " is missing and useradd is not available",
		"create an unprivileged account and pass it with --run-user"}
}

// checkDir reports whether dir (or its nearest existing parent) is writable and has room.
func checkDir(name, dir string) check {
	probe := dir
	for {
		if _, err := os.Stat(probe); err == nil {
			break
		}
		parent := filepath.Dir(probe)
		if parent == probe {
			break
		}
		probe = parent
	}
	if err := unix.Access(probe, unix.W_OK); err != nil {
		return check{name, "fail", fmt.Sprintf("%s is not writable: %v", probe, err), "pass --work-root with a writable, short path"}
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(probe, &fs); err != nil {
		return check{name, "fail", err.Error(), "pass --work-root with a writable, short path"}
	}
	free := fs.Bavail * uint64(fs.Bsize)
	kind := "disk"
	if fs.Type == unix.TMPFS_MAGIC {
		kind = "memory (tmpfs)"
	}
	c := check{name, "ok", fmt.Sprintf("%s on %s, %.1f GiB free", dir, kind, float64(free)/(1<<30)), ""}
	if free < minFreeSpace {
		c.Status, c.Fix = "warn", "free space or pass --work-root on a larger filesystem (a default drill needs ~2 GiB)"
	}
	return c
}

func checkDocker(ctx context.Context) check {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := exec.LookPath("docker"); err != nil {
		return check{"docker engine", "warn", "docker CLI not found; the container provider is unavailable (the local provider does not need it)",
			"install Docker Engine to use containers"}
	}
	out, err := exec.CommandContext(ctx, "docker", "version", "--format", "{{.Server.Version}}").Output()
	if err != nil {
		return check{"docker engine", "warn", "engine not reachable; the container provider is unavailable (the local provider does not need it)",
			"start the Docker daemon to use containers"}
	}
	return check{"docker engine", "ok", "Docker Engine " + strings.TrimSpace(string(out)), ""}
}

func printChecks(w io.Writer, checks []check) {
	for _, c := range checks {
		fmt.Fprintf(w, "[%-4s] %-18s %s\n", c.Status, c.Name, c.Detail)
		if c.Fix != "" {
			fmt.Fprintf(w, "       %-18s fix: %s\n", "", c.Fix)
		}
	}
}
