package drill

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pgdrill/pgdrill/harness/cluster/local"
	"github.com/pgdrill/pgdrill/harness/image"
)

// Check is one line of `pgdrill doctor`: what was checked, how it went and how to fix it.
type Check struct {
	Name   string `json:"name"`
	Status string `json:"status"` // ok, warn or fail
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// minFreeSpace is the free space below which doctor warns: a default drill needs ~2 GiB for
// shards, backups, WAL archive and a sidecar.
const minFreeSpace = 2 << 30

// Doctor checks that this machine can run drills: the Postgres binaries, the account servers
// run as, the work root and state directory, leftover runs, and the Docker engine. It changes
// nothing.
func (h *Host) Doctor(ctx context.Context) []Check {
	var out []Check
	bins, err := local.FindBinaries(ctx, h.opts.BinDir)
	if err != nil {
		out = append(out, Check{"postgres binaries", "fail", err.Error(), local.InstallHint})
	} else {
		out = append(out, Check{"postgres binaries", "ok",
			fmt.Sprintf("PostgreSQL %s in %s (found by %s)", bins.Version, bins.Dir, bins.FoundBy), ""})
		var missing []string
		for _, tool := range []string{"pg_verifybackup", "pg_waldump", "pg_dump", "psql"} {
			if _, err := os.Stat(bins.Path(tool)); err != nil {
				missing = append(missing, tool)
			}
		}
		if len(missing) > 0 {
			out = append(out, Check{"postgres tools", "warn", "missing " + strings.Join(missing, ", ") +
				" (backup verification and benchmarks need them)", "install postgresql-client-" + bins.Major})
		} else {
			out = append(out, Check{"postgres tools", "ok", "pg_verifybackup, pg_waldump, pg_dump, psql present", ""})
		}
	}
	out = append(out, h.checkRunUser())
	out = append(out, checkDir("work root", h.workRoot()))
	store, err := h.store()
	if err != nil {
		out = append(out, Check{"state dir", "fail", err.Error(), "pass --state-dir or set PGDRILL_STATE_DIR to a writable directory"})
	} else {
		recs, err := local.FindRuns(h.workRoot(), store)
		switch {
		case err != nil:
			out = append(out, Check{"state dir", "fail", err.Error(), "remove unreadable files from " + store.Dir()})
		default:
			orphaned := 0
			for _, r := range recs {
				if r.Orphaned() {
					orphaned++
				}
			}
			c := Check{"state dir", "ok", fmt.Sprintf("%s, %d live cluster(s)", store.Dir(), len(recs)), ""}
			if orphaned > 0 {
				c.Status, c.Detail = "warn", c.Detail+fmt.Sprintf(", %d left by a killed run", orphaned)
				c.Fix = "pgdrill down --all"
			}
			out = append(out, c)
		}
	}
	docker := checkDocker(ctx)
	out = append(out, docker)
	if docker.Status == "ok" {
		out = append(out, checkImage(ctx))
	}
	return out
}

// checkImage says whether the engine holds the image the container provider runs, built from this
// pgdrill's recipe.
func checkImage(ctx context.Context) Check {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	spec := image.DefaultSpec()
	st, err := image.Inspect(ctx, spec)
	switch {
	case err != nil:
		return Check{"postgres image", "warn", err.Error(), "check the Docker engine"}
	case !st.Present:
		return Check{"postgres image", "warn", spec.Tag + " is missing; the container provider needs it (or an image of your own, --image)",
			"pgdrill image build"}
	case !st.Current:
		return Check{"postgres image", "warn", fmt.Sprintf("%s was built from another recipe (%s, this pgdrill's is %s)", spec.Tag, cmp.Or(st.Recipe, "none"), spec.Recipe()),
			"pgdrill image build"}
	}
	return Check{"postgres image", "ok", fmt.Sprintf("%s, recipe %s", spec.Tag, st.Recipe), ""}
}

func (h *Host) checkRunUser() Check {
	if os.Geteuid() != 0 {
		u, err := user.Current()
		if err != nil {
			return Check{"run user", "fail", err.Error(), "run pgdrill as a regular user with a passwd entry"}
		}
		return Check{"run user", "ok", "servers run as " + u.Username, ""}
	}
	if _, err := user.Lookup(h.runUser()); err == nil {
		return Check{"run user", "ok", "running as root; servers run as " + h.runUser(), ""}
	}
	if _, err := exec.LookPath("useradd"); err == nil {
		return Check{"run user", "ok", "running as root; account " + h.runUser() + " will be created on first use", ""}
	}
	return Check{"run user", "fail", "running as root, account " + h.runUser() + " is missing and useradd is not available",
		"create an unprivileged account and pass it with --run-user"}
}

// checkDir reports whether dir (or its nearest existing parent) is writable and has room.
func checkDir(name, dir string) Check {
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
		return Check{name, "fail", fmt.Sprintf("%s is not writable: %v", probe, err), "pass --work-root with a writable, short path"}
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(probe, &fs); err != nil {
		return Check{name, "fail", err.Error(), "pass --work-root with a writable, short path"}
	}
	free := fs.Bavail * uint64(fs.Bsize)
	kind := "disk"
	if fs.Type == unix.TMPFS_MAGIC {
		kind = "memory (tmpfs)"
	}
	c := Check{name, "ok", fmt.Sprintf("%s on %s, %.1f GiB free", dir, kind, float64(free)/(1<<30)), ""}
	if free < minFreeSpace {
		c.Status, c.Fix = "warn", "free space or pass --work-root on a larger filesystem (a default drill needs ~2 GiB)"
	}
	return c
}

func checkDocker(ctx context.Context) Check {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := exec.LookPath("docker"); err != nil {
		return Check{"docker engine", "warn", "docker CLI not found; the container provider is unavailable (the local provider does not need it)",
			"install Docker Engine to use containers"}
	}
	out, err := exec.CommandContext(ctx, "docker", "version", "--format", "{{.Server.Version}}").Output()
	if err != nil {
		return Check{"docker engine", "warn", "engine not reachable; the container provider is unavailable (the local provider does not need it)",
			"start the Docker daemon to use containers"}
	}
	return Check{"docker engine", "ok", "Docker Engine " + strings.TrimSpace(string(out)), ""}
}

// runUser is the account servers run as when pgdrill runs as root.
func (h *Host) runUser() string {
	if h.opts.RunUser != "" {
		return h.opts.RunUser
	}
	return DefaultRunUser
}
