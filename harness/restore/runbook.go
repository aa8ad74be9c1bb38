package restore

import (
	"bytes"
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
	"time"

	"github.com/pgdrill/pgdrill/harness/incident"
	"github.com/pgdrill/pgdrill/harness/reaper"
)

// DefaultRunbookTimeout is how long a runbook may run when Runbook.Timeout is zero.
const DefaultRunbookTimeout = 30 * time.Minute

// MaxOutput bounds how much of a runbook's output a Result keeps: the end, where failures are.
// It holds the whole log of any runbook that is not chatty beyond reason, so that the log kept
// with a drill's report is complete; a longer one says how much of its start was left out.
const MaxOutput = 1 << 20

// StreamPrefix starts every line of a runbook's output written to Runbook.Stream, telling it from
// pgdrill's own logs on the same terminal.
const StreamPrefix = "runbook | "

// runbookGrace is how long a runbook, and whatever it left running, has to clean up after
// SIGTERM (timeout, cancel, or the runbook's end for what it left) before being killed.
const runbookGrace = 5 * time.Second

// errorLines is how many of the runbook's last output lines its error quotes.
const errorLines = 5

// errorLineBytes bounds each quoted line, so that one huge line cannot drown the error.
const errorLineBytes = 300

// Runbook runs the team's own restore procedure, an external command, and times it: pgdrill
// hands it the facts of the incident (an IncidentFile, and the environment variables named by
// IncidentFileEnv, CatalogDSNEnv, AffectedTenantsEnv and WorkDirEnv) and verifies afterwards, by
// the ledger and fingerprints, what it really restored.
//
// Choose it to rehearse the procedure you would really run in an incident — the script in your
// runbook, with its own tools (pgBackRest, pg_dump, psql, calls back into `pgdrill restore`) —
// so it is drilled every night and its time and completeness are scored like any built-in
// strategy. Its Result names no tenants: what it did is for the verification to find out.
//
// Nothing a runbook starts outlives Restore, however it daemonized (`setsid`, a double fork,
// `nohup ... &`, a server of its own started with pg_ctl): the command runs below a reaper
// (harness/reaper), a child subreaper to which every process the runbook orphans is reparented,
// and which stops all of them when the command ends — SIGTERM, SIGKILL after a few seconds — and
// reaps them. The servers of the cluster under drill are pgdrill's, never below the reaper, and
// are never touched. What the runbook left running is named in its output, marked
// "[pgdrill: ...]".
type Runbook struct {
	// Command is run by /bin/sh -c.
	Command string
	// Timeout bounds the run; past it the command and everything it started are stopped
	// (SIGTERM, then SIGKILL after a grace of a few seconds) and the restore fails. Default:
	// DefaultRunbookTimeout.
	Timeout time.Duration
	// Dir is the command's working directory. Default: pgdrill's.
	Dir string
	// Stream, when set, gets the runbook's output as it comes, line by line, each line prefixed
	// with StreamPrefix, so that a team watching a drill sees where its runbook is. Stdout and
	// stderr share one pipe and one prefix: two pipes could not tell in which order the runbook
	// wrote to them, and the order is what tells a story. Default: none; the output is still kept
	// in Result.Output.
	Stream io.Writer
	// Environ is more of the command's environment ("NAME=value"), after pgdrill's own and
	// before the incident's (IncidentFileEnv and the others, which always win).
	Environ []string
}

// Name implements Strategy.
func (Runbook) Name() string { return "runbook" }

// Restore implements Strategy. A non-zero exit, a timeout and a cancelled ctx are errors that
// say which and quote the last lines of the output; in every case every process the command
// started is gone when Restore returns.
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
	// The output goes to a file, which the runbook writes directly unless it is also streamed:
	// then through a pipe, which nothing the runbook left in the background can hold open for
	// long — the reaper stops all of it when the runbook ends, and the command's WaitDelay bounds
	// the wait for whatever it could not stop.
	out, err := os.Create(filepath.Join(root, "output"))
	if err != nil {
		return res, fmt.Errorf("create runbook output: %w", err)
	}
	defer out.Close()
	var w io.Writer = out
	var lines *lineWriter
	if r.Stream != nil {
		lines = &lineWriter{w: r.Stream, prefix: StreamPrefix}
		w = io.MultiWriter(out, lines)
	}
	env.Log.Info("running runbook", "command", r.Command, "incident_file", incidentPath)
	journal := filepath.Join(root, "restore-journal.jsonl")
	environ := append(append(os.Environ(), r.Environ...),
		IncidentFileEnv+"="+incidentPath,
		CatalogDSNEnv+"="+env.Cluster.Catalog().DSN(),
		AffectedTenantsEnv+"="+strings.Join(ids, ","),
		WorkDirEnv+"="+work,
		JournalEnv+"="+journal)
	tl := newTimeline(env)
	p := newRestorer()
	err = tl.timePhase(PhaseStart{Name: PhaseRunbook, Shard: AllShards, Restorer: p}, func() error {
		follow := r.follow(env.Watch, journal, p)
		defer follow()
		for {
			err := r.run(ctx, w, environ, p)
			if crashed := p.end(); err == nil || !crashed {
				return err
			}
			// The drill crashed it (a restorer-crash fault): the responder runs it again, once
			// back, and its journal says what the crashed run finished.
			tl.retried(Retry{Phase: PhaseRunbook, Shard: AllShards, Attempt: p.Attempt(), At: time.Now(),
				Cause: "the runbook crashed (killed with everything it ran): " + err.Error()})
			env.Log.Warn("the runbook crashed; running it again once its restorer is back", "attempt", p.Attempt(), "err", err)
			fmt.Fprintf(w, "[pgdrill: the runbook crashed (attempt %d); it runs again once its restorer is back]\n", p.Attempt())
			if err := p.awaitRerun(ctx); err != nil {
				return err
			}
		}
	})
	timed := tl.result(r.Name(), nil)
	res.Phases, res.Retries = timed.Phases, timed.Retries
	if lines != nil {
		if ferr := lines.flush(); ferr != nil {
			env.Log.Warn("could not stream runbook output", "err", ferr)
		}
	}
	output, rerr := tail(out, MaxOutput)
	if rerr != nil {
		env.Log.Warn("could not read runbook output", "err", rerr)
	}
	res.Output = output
	if err != nil {
		err = fmt.Errorf("%w; %s", err, lastOutput(output))
	}
	return res, err
}

// lastOutput quotes the last lines of a runbook's output for its error, so that a failure says
// more than "exit status 1".
func lastOutput(output string) string {
	text := strings.TrimRight(output, "\n")
	if strings.TrimSpace(text) == "" {
		return "it printed nothing"
	}
	lines := strings.Split(text, "\n")
	lines = lines[max(0, len(lines)-errorLines):]
	for i, l := range lines {
		if len(l) > errorLineBytes {
			lines[i] = strings.ToValidUTF8(l[:errorLineBytes], "") + "..."
		}
	}
	return "last output:\n\t" + strings.Join(lines, "\n\t")
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

// run runs the command once below a reaper, so that whatever it started is gone when run
// returns, as attempt p; the caller ends the attempt (p.end).
func (r Runbook) run(ctx context.Context, out io.Writer, environ []string, p *Restorer) error {
	timeout := cmp.Or(r.Timeout, DefaultRunbookTimeout)
	runCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := reaper.CommandContext(runCtx, runbookGrace, "/bin/sh", "-c", r.Command)
	cmd.Dir = r.Dir
	cmd.Env = environ
	cmd.Stdout, cmd.Stderr = out, out // the same writer: one pipe, written in the runbook's order
	err := cmd.Start()
	if err == nil {
		p.begin(cmd)
		err = cmd.Wait()
	} else {
		p.begin(nil)
	}
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("run runbook: %w", ctx.Err())
	case errors.Is(runCtx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("run runbook: timed out after %s", timeout)
	case errors.Is(err, exec.ErrWaitDelay):
		// It exited 0, but something it started could not be stopped (see its output).
		return fmt.Errorf("run runbook: a process it started still holds its output: %w", err)
	default:
		return fmt.Errorf("run runbook: %w", err)
	}
}

// followPoll is how often a running runbook's journal is read for what its `pgdrill restore`
// did.
const followPoll = 20 * time.Millisecond

// follow reads, while the runbook runs, the journal its `pgdrill restore` keeps, and tells watch
// the phases it journals (with the runbook's Restorer, so that a fault attached to
// restore.merge strikes inside the runbook's merge) and p the tenants it brings back. A phase
// begun by an attempt that crashed ends when the crash is seen. It returns the function that
// stops following, after a last read.
func (r Runbook) follow(watch Watcher, journal string, p *Restorer) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	tail := &journalTail{path: journal}
	type phase struct {
		name  string
		shard int
	}
	open := map[phase]bool{} // begun and not ended
	ended := func(k phase) {
		delete(open, k)
		if watch != nil {
			watch.PhaseEnded(k.name, k.shard)
		}
	}
	read := func() {
		running := p.Running()    // before the read: what a command that ended wrote is all read
		entries, _ := tail.next() // a journal it cannot read tells watch nothing; the verification tells all
		for _, e := range entries {
			k := phase{e.Phase, e.Shard}
			switch e.Event {
			case JournalPhaseBegan:
				open[k] = true
				if watch != nil {
					watch.PhaseBegan(PhaseStart{Name: e.Phase, Shard: e.Shard, Restorer: p})
				}
			case JournalPhaseEnded:
				ended(k)
			case JournalTenantDone:
				p.tenantBack()
			}
		}
		if !running {
			for k := range open { // the attempt that began them is gone
				ended(k)
			}
		}
	}
	go func() {
		defer close(finished)
		t := time.NewTicker(followPoll)
		defer t.Stop()
		for {
			select {
			case <-done:
				read()
				return
			case <-t.C:
				read()
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// lineWriter writes what it is given to w line by line, each line prefixed. It is written by
// one goroutine at a time (os/exec's copy, then flush).
type lineWriter struct {
	w      io.Writer
	prefix string
	buf    []byte // the line begun and not ended yet
	err    error  // the first write error; later output is dropped
}

// maxLine bounds a line kept waiting for its end: a runbook printing without newlines (a
// progress bar, binary data) is streamed in pieces of this size.
const maxLine = 64 << 10

// Write implements io.Writer. It never fails, so that a broken stream cannot break the runbook
// (whose output is kept in full anyway); flush reports the first error.
func (l *lineWriter) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 && len(l.buf) < maxLine {
			return len(p), nil
		}
		if i < 0 {
			i = maxLine - 1
		}
		l.emit(l.buf[:i+1])
		l.buf = l.buf[i+1:]
	}
}

// emit writes one line (with its newline, when it has one) after the prefix.
func (l *lineWriter) emit(line []byte) {
	if l.err != nil {
		return
	}
	out := append([]byte(l.prefix), line...)
	if out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	_, l.err = l.w.Write(out)
}

// flush writes the last line when the output did not end with a newline, and reports the first
// write error.
func (l *lineWriter) flush() error {
	if len(l.buf) > 0 {
		l.emit(l.buf)
		l.buf = nil
	}
	if l.err != nil {
		return fmt.Errorf("stream runbook output: %w", l.err)
	}
	return nil
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
