package restore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pgdrill/pgdrill/harness/incident"
)

// DefaultRunbookTimeout is how long a runbook may run when Runbook.Timeout is zero.
const DefaultRunbookTimeout = 30 * time.Minute

// MaxOutput bounds how much of a runbook's output a Result keeps: the end, where failures are.
const MaxOutput = 64 << 10

// runbookGrace is how long a runbook has to clean up after SIGTERM (timeout or cancel) before
// its whole process group is killed.
const runbookGrace = 5 * time.Second

// Runbook runs the team's own restore procedure, an external command, and times it: pgdrill
// hands it the facts of the incident (an IncidentFile, and the environment variables named by
// IncidentFileEnv, CatalogDSNEnv, AffectedTenantsEnv and WorkDirEnv) and verifies afterwards, by
// the ledger and fingerprints, what it really restored.
//
// Choose it to rehearse the procedure you would really run in an incident — the script in your
// runbook, with its own tools (pgBackRest, pg_dump, psql, calls back into `pgdrill restore`) —
// so it is drilled every night and its time and completeness are scored like any built-in
// strategy. Its Result names no tenants: what it did is for the verification to find out.
type Runbook struct {
	// Command is run by /bin/sh -c.
	Command string
	// Timeout bounds the run; past it the command's process group is stopped (SIGTERM, then
	// SIGKILL after a grace of a few seconds) and the restore fails. Default:
	// DefaultRunbookTimeout.
	Timeout time.Duration
	// Dir is the command's working directory. Default: pgdrill's.
	Dir string
}

// Name implements Strategy.
func (Runbook) Name() string { return "runbook" }

// Restore implements Strategy. A non-zero exit, a timeout and a cancelled ctx are errors that
// say which; in every case the command's whole process group is gone when Restore returns.
func (r Runbook) Restore(ctx context.Context, env Env, rec incident.Record) (Result, error) {
	res := Result{Strategy: r.Name()}
	if strings.TrimSpace(r.Command) == "" {
		return res, errors.New("run runbook: no command")
	}
	root, err := os.MkdirTemp("", "pgdrill-runbook-")
	if err != nil {
		return res, fmt.Errorf("create runbook directory: %w", err)
	}
	defer func() {
		if err := os.RemoveAll(root); err != nil {
			env.Log.Warn("could not remove runbook directory", "dir", root, "err", err)
		}
	}()
	work := filepath.Join(root, "work")
	if err := os.Mkdir(work, 0o700); err != nil {
		return res, fmt.Errorf("create runbook work directory: %w", err)
	}
	if err := shareWorkDir(root, work, env.Cluster.Catalog().Info().Account); err != nil {
		return res, err
	}
	incidentPath := filepath.Join(root, "incident.json")
	if err := WriteIncidentFile(incidentPath, NewIncidentFile(env, rec)); err != nil {
		return res, err
	}
	ids := make([]string, len(rec.Affected))
	for i, t := range rec.Affected {
		ids[i] = strconv.FormatInt(t.ID, 10)
	}
	// The output goes to a file, not a pipe: a process the runbook left in the background
	// cannot hold Wait up by keeping a pipe open.
	out, err := os.Create(filepath.Join(root, "output"))
	if err != nil {
		return res, fmt.Errorf("create runbook output: %w", err)
	}
	defer out.Close()
	env.Log.Info("running runbook", "command", r.Command, "incident_file", incidentPath)
	tl := &timeline{}
	err = tl.time(PhaseRunbook, AllShards, func() error {
		return r.run(ctx, out, append(os.Environ(),
			IncidentFileEnv+"="+incidentPath,
			CatalogDSNEnv+"="+env.Cluster.Catalog().DSN(),
			AffectedTenantsEnv+"="+strings.Join(ids, ","),
			WorkDirEnv+"="+work))
	})
	res.Phases = tl.sorted()
	output, rerr := tail(out, MaxOutput)
	if rerr != nil {
		env.Log.Warn("could not read runbook output", "err", rerr)
	}
	res.Output = output
	return res, err
}

// shareWorkDir gives the work directory to the account the servers run as, when pgdrill runs as
// root and that account is another: a runbook that starts a sidecar of its own as that account
// must be able to make its data directory there. The directory above it only lets the account
// pass through (mode 0711), not list what else is there.
func shareWorkDir(root, work, account string) error {
	if os.Geteuid() != 0 || account == "" || account == "root" {
		return nil
	}
	u, err := user.Lookup(account)
	if err != nil {
		return fmt.Errorf("share runbook work directory with %s: %w", account, err)
	}
	uid, uerr := strconv.Atoi(u.Uid)
	gid, gerr := strconv.Atoi(u.Gid)
	if uerr != nil || gerr != nil {
		return fmt.Errorf("share runbook work directory with %s: uid %q, gid %q", account, u.Uid, u.Gid)
	}
	if err := os.Chmod(root, 0o711); err != nil {
		return fmt.Errorf("share runbook work directory: %w", err)
	}
	if err := os.Chown(work, uid, gid); err != nil {
		return fmt.Errorf("share runbook work directory with %s: %w", account, err)
	}
	return nil
}

// run runs the command in a process group of its own and, however it ends, kills whatever of
// that group is left.
func (r Runbook) run(ctx context.Context, out *os.File, environ []string) error {
	timeout := cmp.Or(r.Timeout, DefaultRunbookTimeout)
	runCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(runCtx, "/bin/sh", "-c", r.Command)
	cmd.Dir = r.Dir
	cmd.Env = environ
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = runbookGrace
	err := cmd.Run()
	if cmd.Process != nil {
		// Whatever the runbook left running in its group goes too; the group's id stays taken while
		// any of it runs, so this cannot reach another process.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("run runbook: %w", ctx.Err())
	case errors.Is(runCtx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("run runbook: timed out after %s", timeout)
	default:
		return fmt.Errorf("run runbook: %w", err)
	}
}

// tail returns the last n bytes of f, saying how much it left out.
func tail(f *os.File, n int64) (string, error) {
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return "", fmt.Errorf("read output: %w", err)
	}
	start := max(size-n, 0)
	buf := make([]byte, size-start)
	if _, err := f.ReadAt(buf, start); err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read output: %w", err)
	}
	if start > 0 {
		return fmt.Sprintf("[pgdrill: the first %d bytes of output are left out]\n", start) + string(buf), nil
	}
	return string(buf), nil
}
