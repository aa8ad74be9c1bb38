package drill

// The game day's control channel: the one way between a game day's `pgdrill up --scenario`, which
// owns the cluster and the truth the team is scored against, and the commands the team runs
// while it lasts: `pgdrill incident`, `pgdrill restore` and `pgdrill score`, and the facilitator's
// `pgdrill fault inject|heal|list`, and `pgdrill locate`. The owner serves a
// small HTTP API on a unix socket (mode 0600) in the game day's directory; the commands are its
// clients.
//
// Nothing the commands need is read back from files: the baseline, the incident record, the
// workload's ledger and the servers' addresses stay in the owner's memory, so a team that edits
// what it can see (the incident file it is given, say) changes nothing its score is computed
// from. Built-in restores asked for through the channel run in the owner, with its standbys and
// exports and on its clock.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pgdrill/pgdrill/harness/exitcode"
	"github.com/pgdrill/pgdrill/harness/incident"
	"github.com/pgdrill/pgdrill/harness/locate"
	"github.com/pgdrill/pgdrill/harness/restore"
	"github.com/pgdrill/pgdrill/reports"
	"github.com/pgdrill/pgdrill/scenarios"
)

// File names in a game day's directory.
const (
	// socketName is the owner's control socket.
	socketName = "control.sock"
	// IncidentFileName is the incident file the team is given once the incident happened: what a
	// runbook would get in $PGDRILL_INCIDENT_FILE. It is a copy; nothing reads it back.
	IncidentFileName = "incident.json"
)

// maxSocketPath is the longest unix socket path the kernel takes (sun_path, 108 bytes with its
// terminating NUL).
const maxSocketPath = 107

// Page is what the on-call engineer is told when the incident happens: which customers report
// trouble and since when, not how to fix it.
type Page struct {
	RunID   string    `json:"run_id"`
	At      time.Time `json:"at"`
	Tenants []int64   `json:"tenants"`
	Message string    `json:"message"`
}

// pageOf is the page of run's incident of a scenario, which happened at, as the team is told it
// (handed): its victims, or a blind drill's ticket's.
func pageOf(scenario, runID string, handed incident.Record, at time.Time) Page {
	p := Page{RunID: runID, At: at}
	for _, t := range handed.Affected {
		p.Tenants = append(p.Tenants, t.ID)
	}
	if handed.Ticket != nil {
		p.Tenants = handed.Ticket.Tenants
	}
	p.Message = fmt.Sprintf("SEV-1 (%s): support reports %d customer(s) whose data is missing or wrong since about %s — tenants %v. "+
		"Everyone else seems fine. Restore them, then run `pgdrill score`.", scenario, len(p.Tenants), p.At.Local().Format(time.TimeOnly), p.Tenants)
	return p
}

// restoreRequest asks the owner to run a built-in strategy.
type restoreRequest struct {
	Strategy string `json:"strategy"`
}

// healRequest asks the owner to heal a fault, by its id.
type healRequest struct {
	ID int `json:"id"`
}

// failure is an error crossing the channel, with the exit code it maps to.
type failure struct {
	Error string        `json:"error"`
	Code  exitcode.Code `json:"code"`
}

// serve answers the game day's commands on the control socket in dir until ctx ends, then
// removes the socket. It writes the incident file for the team to dir once the incident
// happened.
func (g *GameDay) serve(ctx context.Context, dir string, log *slog.Logger) error {
	path := filepath.Join(dir, socketName)
	if len(path) > maxSocketPath {
		return fmt.Errorf("serve game day: the control socket path %s is longer than %d bytes; choose a shorter --state-dir", path, maxSocketPath)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("serve game day: create %s: %w", dir, err)
	}
	_ = os.Remove(path) // a socket left by a killed owner of an earlier run of the same id
	l, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("serve game day: listen on %s: %w", path, err)
	}
	defer os.Remove(path)
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return fmt.Errorf("serve game day: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /incident", func(w http.ResponseWriter, req *http.Request) {
		if _, err := g.Inject(req.Context()); err != nil {
			fail(w, err)
			return
		}
		f, err := g.IncidentFile()
		if err == nil {
			err = restore.WriteIncidentFile(filepath.Join(dir, IncidentFileName), f)
		}
		if err != nil {
			log.Warn("could not write the incident file for the team", "err", err)
		}
		page, err := g.Page()
		if err != nil {
			fail(w, err)
			return
		}
		reply(w, page)
	})
	mux.HandleFunc("POST /restore", func(w http.ResponseWriter, req *http.Request) {
		var r restoreRequest
		if err := json.NewDecoder(req.Body).Decode(&r); err != nil {
			fail(w, exitcode.With(fmt.Errorf("read restore request: %w", err), exitcode.InvalidInput))
			return
		}
		res, err := g.Restore(req.Context(), r.Strategy)
		if err != nil {
			failWith(w, err, res)
			return
		}
		reply(w, res)
	})
	mux.HandleFunc("POST /fault/inject", func(w http.ResponseWriter, req *http.Request) {
		var f scenarios.Fault
		if err := json.NewDecoder(req.Body).Decode(&f); err != nil {
			fail(w, exitcode.With(fmt.Errorf("read fault: %w", err), exitcode.InvalidInput))
			return
		}
		o, err := g.InjectFault(f)
		if err != nil {
			fail(w, err)
			return
		}
		reply(w, o)
	})
	mux.HandleFunc("POST /fault/heal", func(w http.ResponseWriter, req *http.Request) {
		var h healRequest
		if err := json.NewDecoder(req.Body).Decode(&h); err != nil {
			fail(w, exitcode.With(fmt.Errorf("read heal request: %w", err), exitcode.InvalidInput))
			return
		}
		o, err := g.HealFault(h.ID)
		if err != nil {
			fail(w, err)
			return
		}
		reply(w, o)
	})
	mux.HandleFunc("POST /locate", func(w http.ResponseWriter, req *http.Request) {
		var rep incident.Ticket
		if err := json.NewDecoder(req.Body).Decode(&rep); err != nil {
			fail(w, exitcode.With(fmt.Errorf("read report: %w", err), exitcode.InvalidInput))
			return
		}
		found, err := g.Locate(req.Context(), rep)
		if err != nil {
			fail(w, err)
			return
		}
		reply(w, found)
	})
	mux.HandleFunc("POST /fault/list", func(w http.ResponseWriter, _ *http.Request) {
		reply(w, g.Faults())
	})
	mux.HandleFunc("POST /score", func(w http.ResponseWriter, req *http.Request) {
		out, err := g.Score(req.Context())
		if err != nil {
			fail(w, err)
			return
		}
		data, err := reports.Encode(Report(out))
		if err != nil {
			fail(w, exitcode.With(err, exitcode.HarnessError))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(data)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		return nil
	case err := <-done:
		return fmt.Errorf("serve game day: %w", err)
	}
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, err error) { failWith(w, err, nil) }

// failWith answers with err, and v (what was done before it) in the body's "result".
func failWith(w http.ResponseWriter, err error, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusConflict)
	_ = json.NewEncoder(w).Encode(struct {
		failure
		Result any `json:"result,omitempty"`
	}{failure{Error: err.Error(), Code: exitcode.Of(err)}, v})
}

// GameDayClient reaches a game day's owner.
type GameDayClient struct {
	dir  string
	http *http.Client
}

// dialGameDay returns a client of the game day whose directory is dir; it fails when no owner
// serves it (the game day's `pgdrill up` has ended).
func dialGameDay(dir string) (*GameDayClient, error) {
	path := filepath.Join(dir, socketName)
	if _, err := os.Stat(path); err != nil {
		return nil, exitcode.With(fmt.Errorf("reach the game day in %s: its `pgdrill up --scenario` is not running (%w)", dir, err),
			exitcode.HarnessError)
	}
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	return &GameDayClient{dir: dir, http: &http.Client{Transport: tr}}, nil
}

// Incident asks the owner to inject the incident, and returns the page.
func (c *GameDayClient) Incident(ctx context.Context) (Page, error) {
	var p Page
	err := c.call(ctx, "/incident", nil, &p)
	return p, err
}

// Restore asks the owner to run the built-in strategy named, and returns its result: what it
// restored before it failed, too, when it failed.
func (c *GameDayClient) Restore(ctx context.Context, strategy string) (RestoreResult, error) {
	var res RestoreResult
	err := c.call(ctx, "/restore", restoreRequest{Strategy: strategy}, &res)
	return res, err
}

// InjectFault asks the owner to break something now, and returns what became of the fault once
// it was seen to take effect (or failed to).
func (c *GameDayClient) InjectFault(ctx context.Context, f scenarios.Fault) (FaultOutcome, error) {
	var o FaultOutcome
	err := c.call(ctx, "/fault/inject", f, &o)
	return o, err
}

// HealFault asks the owner to heal fault id now.
func (c *GameDayClient) HealFault(ctx context.Context, id int) (FaultOutcome, error) {
	var o FaultOutcome
	err := c.call(ctx, "/fault/heal", healRequest{ID: id}, &o)
	return o, err
}

// Faults asks the owner for every fault of the game day and what became of each.
func (c *GameDayClient) Faults(ctx context.Context) ([]FaultOutcome, error) {
	var out []FaultOutcome
	err := c.call(ctx, "/fault/list", nil, &out)
	return out, err
}

// Locate asks the owner to find the harm from what a responder knows.
func (c *GameDayClient) Locate(ctx context.Context, rep incident.Ticket) ([]locate.Finding, error) {
	var out []locate.Finding
	err := c.call(ctx, "/locate", rep, &out)
	return out, err
}

// Score asks the owner to score the game day, and returns the report.
func (c *GameDayClient) Score(ctx context.Context) (*reports.Report, error) {
	var raw json.RawMessage
	if err := c.call(ctx, "/score", nil, &raw); err != nil {
		return nil, err
	}
	r, err := reports.Decode(raw)
	return r, exitcode.With(err, exitcode.HarnessError)
}

// call posts body (as JSON) to the owner's path and decodes the answer into out. An error the
// owner answers with keeps its exit code; a result it sends with the error is decoded too.
func (c *GameDayClient) call(ctx context.Context, path string, body, out any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return exitcode.With(fmt.Errorf("encode request: %w", err), exitcode.HarnessError)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://gameday"+path, strings.NewReader(string(data)))
	if err != nil {
		return exitcode.With(err, exitcode.HarnessError)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return exitcode.With(fmt.Errorf("reach the game day's pgdrill up: %w", err), exitcode.HarnessError)
	}
	defer resp.Body.Close()
	payload, err := io.ReadAll(resp.Body)
	if err != nil {
		return exitcode.With(fmt.Errorf("read the game day's answer: %w", err), exitcode.HarnessError)
	}
	if resp.StatusCode == http.StatusOK {
		return exitcode.With(json.Unmarshal(payload, out), exitcode.HarnessError)
	}
	var f struct {
		failure
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(payload, &f); err != nil || f.Error == "" {
		return exitcode.With(fmt.Errorf("the game day answered %s: %s", resp.Status, payload), exitcode.HarnessError)
	}
	if len(f.Result) > 0 {
		_ = json.Unmarshal(f.Result, out)
	}
	return exitcode.With(errors.New(f.Error), f.Code)
}
